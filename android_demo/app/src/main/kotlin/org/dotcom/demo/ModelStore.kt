package org.dotcom.demo

import android.content.Context
import org.dotcom.core.Manifest
import org.dotcom.core.ManifestException
import java.io.File
import java.io.IOException

/** Where a model came from; shown in the model list. */
enum class ModelSource(val label: String) {
    BUNDLED("bundled"),
    APP_STORAGE("app storage"),
    DEVICE_TMP(ModelStore.DEVICE_DIR),
}

/**
 * A `.pte` with its manifest. [problem] is set (and the entry still listed) when the manifest
 * is missing or unusable, so the user sees why a model cannot run instead of it vanishing.
 */
data class ModelEntry(val pte: File, val manifest: Manifest?, val source: ModelSource, val problem: String? = null) {
    val title: String get() = manifest?.let { "${it.model} · ${it.backend} · ${it.quantization}" } ?: pte.nameWithoutExtension
}

/** Finds models: the bundled default (assets/models), the app's files/models and /data/local/tmp/dotcom. */
object ModelStore {
    const val DEVICE_DIR = "/data/local/tmp/dotcom"
    private const val ASSET_DIR = "models"

    fun appModelsDir(context: Context): File = File(context.filesDir, "models")

    /** Every model the app can see, bundled first. */
    fun discover(context: Context): List<ModelEntry> {
        val bundled = copyBundled(context)
        return scan(bundled, ModelSource.BUNDLED) +
            scan(appModelsDir(context), ModelSource.APP_STORAGE) +
            scan(File(DEVICE_DIR), ModelSource.DEVICE_TMP)
    }

    /** The `.pte` files of [dir] with their manifests, by name. */
    fun scan(dir: File, source: ModelSource): List<ModelEntry> {
        val files = dir.listFiles { f -> f.isFile && f.name.endsWith(".pte") } ?: return emptyList()
        return files.sortedBy { it.name }.map { entryFor(it, source) }
    }

    /** The entry for one `.pte`, reading `<stem>.json` beside it. */
    fun entryFor(pte: File, source: ModelSource): ModelEntry {
        val manifestFile = File(pte.parentFile, pte.nameWithoutExtension + ".json")
        if (!manifestFile.isFile) {
            return ModelEntry(pte, null, source, "no manifest ${manifestFile.name} beside ${pte.name}")
        }
        return try {
            ModelEntry(pte, Manifest.parse(manifestFile.readText()), source)
        } catch (e: ManifestException) {
            ModelEntry(pte, null, source, "${manifestFile.name}: ${e.message}")
        } catch (e: IOException) {
            ModelEntry(pte, null, source, "${manifestFile.name}: cannot read (${e.message})")
        }
    }

    /**
     * The model a headless run should benchmark in [dir]: [name] when given, else the only
     * `.pte` there. Throws [IllegalArgumentException] with one line otherwise.
     */
    fun pick(dir: File, name: String?): ModelEntry {
        if (!dir.isDirectory) throw IllegalArgumentException("model_dir $dir is not a readable directory")
        if (name != null) {
            val pte = File(dir, name)
            if (!pte.isFile) throw IllegalArgumentException("no model $name in $dir")
            return entryFor(pte, ModelSource.DEVICE_TMP)
        }
        val all = scan(dir, ModelSource.DEVICE_TMP)
        return when (all.size) {
            0 -> throw IllegalArgumentException("no .pte file in $dir")

            1 -> all[0]

            else -> throw IllegalArgumentException(
                "${all.size} .pte files in $dir (${all.joinToString { it.pte.name }}); pass --es model_name NAME",
            )
        }
    }

    /** Copies assets/models into files/bundled once per app version (ExecuTorch loads from a path). */
    private fun copyBundled(context: Context): File {
        val out = File(context.filesDir, "bundled")
        val names = context.assets.list(ASSET_DIR).orEmpty()
        val stamp = File(out, ".version")
        val version = context.packageManager.getPackageInfo(context.packageName, 0).lastUpdateTime.toString()
        if (stamp.isFile && stamp.readText() == version) return out
        out.mkdirs()
        for (name in names) {
            context.assets.open("$ASSET_DIR/$name").use { input ->
                File(out, name).outputStream().use { input.copyTo(it) }
            }
        }
        stamp.writeText(version)
        return out
    }
}
