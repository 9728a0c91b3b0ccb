package org.dotcom.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class JsonTest {
    @Test
    fun roundTripsNestedValues() {
        val value =
            linkedMapOf(
                "s" to "quote \" backslash \\ newline \n tab \t unicode é \u0001",
                "i" to 42L,
                "d" to 1.0E-5,
                "neg" to -3.25,
                "b" to true,
                "n" to null,
                "list" to listOf(1L, 2.5, null),
                "objs" to listOf(mapOf("a" to 1L), emptyMap<String, Any>()),
                "empty" to emptyList<Any>(),
            )
        val text = Json.write(value)
        assertEquals(value, Json.parse(text))
        assertEquals(value, Json.parse(Json.write(value, indent = 0)))
    }

    @Test
    fun parsesNumbersAndEscapes() {
        assertEquals(listOf(0L, -7L, 1.5, 2.0E10, 3.0), Json.parse("[0, -7, 1.5, 2e10, 3.0]"))
        assertEquals("a/b\u00e9", Json.parse("\"a\\/b\\u00e9\""))
    }

    @Test
    fun rejectsMalformedDocumentsWithOffset() {
        for (bad in listOf("", "{", "[1,]", "{\"a\" 1}", "tru", "\"unterminated", "1 2", "-", "1.", "{1: 2}")) {
            val e = assertThrows(JsonException::class.java) { Json.parse(bad) }
            assertTrue(e.message!!.startsWith("invalid JSON at offset"), e.message)
        }
    }

    @Test
    fun refusesNonFiniteNumbers() {
        assertThrows(JsonException::class.java) { Json.write(listOf(Double.NaN)) }
        assertThrows(JsonException::class.java) { Json.write(mapOf("x" to Double.POSITIVE_INFINITY)) }
    }
}
