package org.dotcom.core

/** How an image becomes the input tensor (manifest `preprocessing`). */
enum class Interpolation { BILINEAR, BICUBIC, NEAREST }

/** The manifest's `input` object. */
data class InputSpec(val name: String, val shape: List<Int>, val layout: String, val dtype: String)

/**
 * The manifest's `preprocessing` object: resize the shorter side to [resize], center-crop
 * [cropHeight] x [cropWidth], scale 0..255 to 0..1, then (x - mean) / std per channel.
 */
data class Preprocessing(
    val resize: Int,
    val cropHeight: Int,
    val cropWidth: Int,
    val interpolation: Interpolation,
    val mean: List<Double>,
    val std: List<Double>,
)

/** The manifest's `delegation` summary (what the backend took). */
data class Delegation(
    val delegatedNodes: Int,
    val totalNodes: Int,
    val fraction: Double,
    val partitions: Int,
    val nonDelegatedOps: Map<String, Int>,
) {
    fun toMap(): Map<String, Any?> = linkedMapOf(
        "delegated_nodes" to delegatedNodes,
        "total_nodes" to totalNodes,
        "fraction" to fraction,
        "partitions" to partitions,
        "non_delegated_ops" to nonDelegatedOps,
    )
}

/**
 * An artifact manifest (export/schemas/manifest.v1.schema.json), read by the app and the
 * headless benchmark.
 *
 * Parsing checks what the app relies on and fails with one line naming the field, so a
 * manifest from another tool or version is reported, not crashed on.
 */
data class Manifest(
    val artifactFile: String,
    val format: String,
    val sizeBytes: Long,
    val sha256: String,
    val model: String,
    val task: String,
    val numClasses: Int,
    val input: InputSpec,
    val preprocessing: Preprocessing,
    /** `outputs[0].kind`: "logits" for classifiers, "probabilities" when softmax is already applied. */
    val outputKind: String,
    val labels: List<String>,
    val backend: String,
    val computeUnit: String?,
    val quantization: String,
    val delegation: Delegation?,
    val versions: Map<String, String?>,
) {
    /** The name ExecuTorch registers the backend under, for `getRegisteredBackends()`. */
    val runtimeBackendName: String?
        get() = RUNTIME_BACKENDS[backend]

    companion object {
        const val SCHEMA = "dotcom-mobile/manifest"

        /** manifest `backend` -> ExecuTorch backend id; portable needs no delegate. */
        val RUNTIME_BACKENDS =
            mapOf(
                "xnnpack" to "XnnpackBackend",
                "vulkan" to "VulkanBackend",
                "qnn" to "QnnBackend",
                "coreml" to "CoreMLBackend",
            )

        /** Parses manifest JSON text; throws [ManifestException] with one clear line. */
        fun parse(text: String): Manifest {
            val root =
                try {
                    Json.parse(text)
                } catch (e: JsonException) {
                    throw ManifestException("manifest is not valid JSON (${e.message})")
                }
            return fromJson(root as? Map<*, *> ?: throw ManifestException("manifest must be a JSON object"))
        }

        /** Builds a manifest from already parsed JSON. */
        fun fromJson(m: Map<*, *>): Manifest {
            val f = Fields(m, "")
            val schema = f.string("schema")
            if (schema != SCHEMA) throw ManifestException("not a dotcom-mobile manifest (schema '$schema')")
            val version = f.int("schema_version")
            if (version != 1) throw ManifestException("manifest schema_version $version is not supported (expected 1)")

            val art = f.obj("artifact")
            val inp = f.obj("input")
            val shape = inp.intList("shape")
            if (shape.size != 4 || shape.any { it < 1 }) throw ManifestException("input.shape must be 4 positive integers, got $shape")
            val layout = inp.string("layout")
            if (layout != "NCHW") throw ManifestException("input.layout must be NCHW, got $layout")
            val dtype = inp.string("dtype")
            if (dtype != "float32" && dtype != "float16") throw ManifestException("input.dtype must be float32 or float16, got $dtype")

            val pre = f.obj("preprocessing")
            val crop = pre.intList("crop")
            if (crop.size != 2 || crop.any { it < 1 }) throw ManifestException("preprocessing.crop must be [height, width], got $crop")
            if (crop[0] != shape[2] || crop[1] != shape[3]) {
                throw ManifestException("preprocessing.crop $crop does not match input.shape $shape")
            }
            val resize = pre.int("resize")
            if (resize < 1) throw ManifestException("preprocessing.resize must be positive, got $resize")
            val interpName = pre.string("interpolation")
            val interpolation =
                Interpolation.entries.firstOrNull { it.name.equals(interpName, ignoreCase = true) }
                    ?: throw ManifestException("preprocessing.interpolation '$interpName' is not bilinear, bicubic or nearest")
            val mean = pre.doubleList("mean")
            val std = pre.doubleList("std")
            if (mean.size != 3) throw ManifestException("preprocessing.mean must have 3 values, got ${mean.size}")
            if (std.size != 3 || std.any { it <= 0.0 }) throw ManifestException("preprocessing.std must be 3 positive values, got $std")

            val outputs = f.objList("outputs")
            if (outputs.isEmpty()) throw ManifestException("manifest field 'outputs' must list at least one output")
            val numClasses = f.int("num_classes")
            val labels = f.stringList("labels")
            if (labels.size != numClasses) {
                throw ManifestException("labels has ${labels.size} names but num_classes is $numClasses")
            }
            val delegation =
                f.objOrNull("delegation")?.let { d ->
                    Delegation(
                        delegatedNodes = d.int("delegated_nodes"),
                        totalNodes = d.int("total_nodes"),
                        fraction = d.double("fraction"),
                        partitions = d.int("partitions"),
                        nonDelegatedOps = d.obj("non_delegated_ops").intMap(),
                    )
                }
            val versions =
                f.obj("versions").raw.entries.associate { (k, v) -> k.toString() to v?.toString() }

            return Manifest(
                artifactFile = art.string("file"),
                format = art.string("format"),
                sizeBytes = art.long("size_bytes"),
                sha256 = art.string("sha256"),
                model = f.string("model"),
                task = f.string("task"),
                numClasses = numClasses,
                input = InputSpec(inp.string("name"), shape, layout, dtype),
                preprocessing = Preprocessing(resize, crop[0], crop[1], interpolation, mean, std),
                outputKind = outputs[0].string("kind"),
                labels = labels,
                backend = f.string("backend"),
                computeUnit = f.stringOrNull("compute_unit"),
                quantization = f.string("quantization"),
                delegation = delegation,
                versions = versions,
            )
        }
    }
}

/** A manifest that cannot be used; the message is one line naming the field. */
class ManifestException(message: String) : IllegalArgumentException(message)

/** Typed access to a JSON object's fields with messages that carry the field's path. */
internal class Fields(val raw: Map<*, *>, private val path: String) {
    private fun name(key: String) = if (path.isEmpty()) key else "$path.$key"

    private fun get(key: String): Any? {
        if (!raw.containsKey(key)) throw ManifestException("manifest is missing '${name(key)}'")
        return raw[key]
    }

    private fun wrong(key: String, what: String): Nothing = throw ManifestException("manifest field '${name(key)}' must be $what")

    fun string(key: String): String = get(key) as? String ?: wrong(key, "a string")

    fun stringOrNull(key: String): String? = if (raw[key] == null) null else string(key)

    fun long(key: String): Long = when (val v = get(key)) {
        is Long -> v
        is Double -> if (v == Math.floor(v)) v.toLong() else wrong(key, "an integer")
        else -> wrong(key, "an integer")
    }

    fun int(key: String): Int = long(key).toInt()

    fun double(key: String): Double = (get(key) as? Number)?.toDouble() ?: wrong(key, "a number")

    fun obj(key: String): Fields = Fields(get(key) as? Map<*, *> ?: wrong(key, "an object"), name(key))

    fun objOrNull(key: String): Fields? = if (raw[key] == null) null else obj(key)

    private fun list(key: String): List<*> = get(key) as? List<*> ?: wrong(key, "an array")

    fun objList(key: String): List<Fields> =
        list(key).mapIndexed { i, v -> Fields(v as? Map<*, *> ?: wrong(key, "an array of objects"), "${name(key)}[$i]") }

    fun intList(key: String): List<Int> = list(key).map { v ->
        when (v) {
            is Long -> v.toInt()
            else -> wrong(key, "an array of integers")
        }
    }

    fun doubleList(key: String): List<Double> = list(key).map { (it as? Number)?.toDouble() ?: wrong(key, "an array of numbers") }

    fun stringList(key: String): List<String> = list(key).map { it as? String ?: wrong(key, "an array of strings") }

    fun intMap(): Map<String, Int> = raw.entries.associate { (k, v) ->
        k.toString() to ((v as? Long)?.toInt() ?: throw ManifestException("manifest field '$path.$k' must be an integer"))
    }
}
