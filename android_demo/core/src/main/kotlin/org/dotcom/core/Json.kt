package org.dotcom.core

/**
 * A small JSON reader and writer.
 *
 * The core must compile with nothing but the Kotlin standard library (it is built and tested
 * off-device with a bare compiler), so it cannot use org.json or kotlinx.serialization. Values
 * map to plain Kotlin types: objects to [Map] (insertion-ordered), arrays to [List], numbers to
 * [Long] when integral and written without fraction or exponent, otherwise [Double].
 */
object Json {
    /** Parses one JSON document; throws [JsonException] naming the offset of the first error. */
    fun parse(text: String): Any? = Reader(text).document()

    /** Serialises [value]; NaN and infinities are rejected because JSON cannot carry them. */
    fun write(value: Any?, indent: Int = 2): String {
        val out = StringBuilder()
        writeValue(out, value, indent, 0)
        return out.toString()
    }

    private fun writeValue(out: StringBuilder, value: Any?, indent: Int, depth: Int) {
        when (value) {
            null -> out.append("null")
            is Boolean -> out.append(value)
            is String -> writeString(out, value)
            is Int, is Long, is Short, is Byte -> out.append(value.toString())
            is Float -> writeDouble(out, value.toDouble())
            is Double -> writeDouble(out, value)
            is Map<*, *> -> writeObject(out, value, indent, depth)
            is Iterable<*> -> writeArray(out, value.toList(), indent, depth)
            is Array<*> -> writeArray(out, value.toList(), indent, depth)
            is IntArray -> writeArray(out, value.toList(), indent, depth)
            is LongArray -> writeArray(out, value.toList(), indent, depth)
            is DoubleArray -> writeArray(out, value.toList(), indent, depth)
            is FloatArray -> writeArray(out, value.toList(), indent, depth)
            else -> throw JsonException("cannot serialise ${value::class.simpleName} as JSON")
        }
    }

    private fun writeDouble(out: StringBuilder, d: Double) {
        if (d.isNaN() || d.isInfinite()) throw JsonException("JSON has no representation for $d")
        // Kotlin prints the shortest string that round-trips (e.g. 1.0E-5), which JSON accepts.
        out.append(d.toString())
    }

    private fun newline(out: StringBuilder, indent: Int, depth: Int) {
        if (indent > 0) {
            out.append('\n')
            repeat(indent * depth) { out.append(' ') }
        }
    }

    private fun writeObject(out: StringBuilder, map: Map<*, *>, indent: Int, depth: Int) {
        if (map.isEmpty()) {
            out.append("{}")
            return
        }
        out.append('{')
        var first = true
        for ((k, v) in map) {
            if (k !is String) throw JsonException("JSON object keys must be strings, got $k")
            if (!first) out.append(',')
            first = false
            newline(out, indent, depth + 1)
            writeString(out, k)
            out.append(if (indent > 0) ": " else ":")
            writeValue(out, v, indent, depth + 1)
        }
        newline(out, indent, depth)
        out.append('}')
    }

    private fun writeArray(out: StringBuilder, list: List<*>, indent: Int, depth: Int) {
        if (list.isEmpty()) {
            out.append("[]")
            return
        }
        // Arrays of numbers stay on one line: latency lists are long and read better that way.
        val flat = list.all { it == null || it is Number || it is Boolean }
        out.append('[')
        list.forEachIndexed { i, v ->
            if (i > 0) out.append(if (flat && indent > 0) ", " else ",")
            if (!flat) newline(out, indent, depth + 1)
            writeValue(out, v, indent, depth + 1)
        }
        if (!flat) newline(out, indent, depth)
        out.append(']')
    }

    private fun writeString(out: StringBuilder, s: String) {
        out.append('"')
        for (c in s) {
            when (c) {
                '"' -> out.append("\\\"")

                '\\' -> out.append("\\\\")

                '\n' -> out.append("\\n")

                '\r' -> out.append("\\r")

                '\t' -> out.append("\\t")

                '\b' -> out.append("\\b")

                '\u000C' -> out.append("\\f")

                else ->
                    if (c < ' ') {
                        out.append("\\u").append(c.code.toString(16).padStart(4, '0'))
                    } else {
                        out.append(c)
                    }
            }
        }
        out.append('"')
    }

    private class Reader(private val s: String) {
        private var i = 0

        fun document(): Any? {
            val v = value()
            skipWs()
            if (i != s.length) fail("trailing characters")
            return v
        }

        private fun fail(what: String): Nothing = throw JsonException("invalid JSON at offset $i: $what")

        private fun skipWs() {
            while (i < s.length && s[i] in " \t\r\n") i++
        }

        private fun value(): Any? {
            skipWs()
            if (i >= s.length) fail("unexpected end of input")
            return when (val c = s[i]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c in '0'..'9') num() else fail("unexpected '$c'")
            }
        }

        private fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) fail("expected $word")
            i += word.length
            return v
        }

        private fun obj(): Map<String, Any?> {
            val m = LinkedHashMap<String, Any?>()
            i++
            skipWs()
            if (i < s.length && s[i] == '}') {
                i++
                return m
            }
            while (true) {
                skipWs()
                if (i >= s.length || s[i] != '"') fail("expected a string key")
                val k = str()
                skipWs()
                if (i >= s.length || s[i] != ':') fail("expected ':'")
                i++
                m[k] = value()
                skipWs()
                if (i >= s.length) fail("unterminated object")
                when (s[i++]) {
                    ',' -> continue

                    '}' -> return m

                    else -> {
                        i--
                        fail("expected ',' or '}'")
                    }
                }
            }
        }

        private fun arr(): List<Any?> {
            val l = ArrayList<Any?>()
            i++
            skipWs()
            if (i < s.length && s[i] == ']') {
                i++
                return l
            }
            while (true) {
                l.add(value())
                skipWs()
                if (i >= s.length) fail("unterminated array")
                when (s[i++]) {
                    ',' -> continue

                    ']' -> return l

                    else -> {
                        i--
                        fail("expected ',' or ']'")
                    }
                }
            }
        }

        private fun str(): String {
            val sb = StringBuilder()
            i++
            while (true) {
                if (i >= s.length) fail("unterminated string")
                val c = s[i++]
                when {
                    c == '"' -> return sb.toString()

                    c == '\\' -> {
                        if (i >= s.length) fail("unterminated escape")
                        when (val e = s[i++]) {
                            '"' -> sb.append('"')

                            '\\' -> sb.append('\\')

                            '/' -> sb.append('/')

                            'b' -> sb.append('\b')

                            'f' -> sb.append('\u000C')

                            'n' -> sb.append('\n')

                            'r' -> sb.append('\r')

                            't' -> sb.append('\t')

                            'u' -> {
                                if (i + 4 > s.length) fail("short \\u escape")
                                val code = s.substring(i, i + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                                sb.append(code.toChar())
                                i += 4
                            }

                            else -> fail("bad escape '\\$e'")
                        }
                    }

                    c < ' ' -> fail("control character in string")

                    else -> sb.append(c)
                }
            }
        }

        private fun num(): Any {
            val start = i
            if (s[i] == '-') i++
            while (i < s.length && s[i] in '0'..'9') i++
            var integral = true
            if (i < s.length && s[i] == '.') {
                integral = false
                i++
                while (i < s.length && s[i] in '0'..'9') i++
            }
            if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
                integral = false
                i++
                if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
                while (i < s.length && s[i] in '0'..'9') i++
            }
            val text = s.substring(start, i)
            if (text == "-" || text.endsWith(".") || text.endsWith("e") || text.endsWith("E")) fail("bad number '$text'")
            if (integral) text.toLongOrNull()?.let { return it }
            return text.toDoubleOrNull() ?: fail("bad number '$text'")
        }
    }
}

/** A malformed JSON document or a value JSON cannot hold. */
class JsonException(message: String) : IllegalArgumentException(message)
