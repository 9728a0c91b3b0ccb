package org.dotcom.demo

import org.pytorch.executorch.EValue
import org.pytorch.executorch.ExecuTorchRuntime
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import java.io.Closeable

/** A model that cannot be loaded or run; the message is shown to the user as it is. */
class ModelException(message: String) : Exception(message)

/**
 * One loaded ExecuTorch module with the checks that turn native failures into readable
 * messages: the file is there and readable, the backend the manifest names is registered in
 * this build of the library, and the ExecuTorch log buffer is appended to every error.
 */
class ExecuTorchSession private constructor(
    val model: ModelEntry,
    private val module: Module,
    /** Module.load plus loadMethod("forward"), in milliseconds. */
    val loadMs: Double,
) : Closeable {
    /** The input shape from the manifest (NCHW); without a manifest the run cannot be fed. */
    val inputShape: LongArray =
        model.manifest?.input?.shape?.map { it.toLong() }?.toLongArray()
            ?: throw ModelException("${model.pte.name} has no manifest, so its input shape is unknown")

    /** Runs forward on one float32 NCHW tensor and returns the first output as floats. */
    fun run(input: FloatArray): FloatArray {
        val outputs =
            try {
                module.forward(EValue.from(Tensor.fromBlob(input, inputShape)))
            } catch (e: Exception) {
                throw ModelException("inference failed: ${e.message}${logTail(module)}")
            }
        if (outputs.isEmpty()) throw ModelException("forward returned no output${logTail(module)}")
        return outputs[0].toTensor().dataAsFloatArray
    }

    override fun close() {
        module.destroy()
    }

    companion object {
        /** Backends compiled into the bundled ExecuTorch library (e.g. XnnpackBackend). */
        fun registeredBackends(): List<String> = try {
            ExecuTorchRuntime.getRegisteredBackends().toList()
        } catch (e: Throwable) {
            emptyList()
        }

        /** Loads [model] with [threads] CPU threads (0: the runtime's default). */
        fun open(model: ModelEntry, threads: Int): ExecuTorchSession {
            model.problem?.let { throw ModelException(it) }
            val file = model.pte
            if (!file.isFile) throw ModelException("${file.path}: no such file")
            if (!file.canRead()) {
                throw ModelException("${file.path}: the app may not read it (adb shell chmod a+r it)")
            }
            val manifest = model.manifest
            if (manifest != null && manifest.input.dtype != "float32") {
                throw ModelException("${file.name} takes ${manifest.input.dtype} input; the app feeds float32")
            }
            val needed = manifest?.runtimeBackendName
            val have = registeredBackends()
            if (needed != null && needed !in have) {
                throw ModelException(
                    "${file.name} needs $needed, which this build's ExecuTorch lacks " +
                        "(it has ${have.joinToString().ifEmpty { "none" }}); rebuild with " +
                        "-Pdotcom.executorchFlavor=${manifest.backend}",
                )
            }
            val start = System.nanoTime()
            val module =
                try {
                    Module.load(file.absolutePath, Module.LOAD_MODE_MMAP, threads)
                } catch (e: Throwable) {
                    throw ModelException("cannot load ${file.name}: ${e.message}${logTail(null)}")
                }
            try {
                // In 1.4+ (1.5.1 is pinned) loadMethod throws ExecutorchRuntimeException on failure.
                module.loadMethod("forward")
            } catch (e: Exception) {
                val log = logTail(module) // before destroy(): a destroyed module has no log to read
                module.destroy()
                throw ModelException("${file.name}: loading forward failed: ${e.message}$log")
            }
            return ExecuTorchSession(model, module, (System.nanoTime() - start) / 1e6)
        }

        /**
         * The last lines of ExecuTorch's in-memory log, to append to an error message. The
         * module's own buffer when it can be read, else the process-wide one (the module failed
         * to load, or is already destroyed); reading the log must never mask the real error.
         */
        fun logTail(module: Module?): String {
            val lines =
                runCatching { module?.readLogBuffer() }.getOrNull()
                    ?: runCatching { Module.readLogBufferStatic() }.getOrNull()
            val tail = lines?.filterNotNull()?.takeLast(8).orEmpty()
            return if (tail.isEmpty()) "" else "\nExecuTorch log:\n" + tail.joinToString("\n")
        }
    }
}
