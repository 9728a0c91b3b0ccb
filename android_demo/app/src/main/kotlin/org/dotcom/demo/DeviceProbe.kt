package org.dotcom.demo

import android.app.ActivityManager
import android.content.Context
import android.os.Build
import android.os.Debug
import android.os.PowerManager
import org.dotcom.core.DeviceInfo
import java.io.File

/**
 * What the report records about the phone: model, SoC, cores, CPU governor and current
 * frequencies, thermal status and memory. Reads that the platform denies (some vendors lock
 * /sys) give null rather than failing the benchmark.
 */
object DeviceProbe {
    fun describe(context: Context, threads: Int): DeviceInfo {
        val cores = Runtime.getRuntime().availableProcessors()
        val memory =
            ActivityManager.MemoryInfo().also {
                (context.getSystemService(Context.ACTIVITY_SERVICE) as ActivityManager).getMemoryInfo(it)
            }
        return DeviceInfo(
            os = "Android ${Build.VERSION.RELEASE} (API ${Build.VERSION.SDK_INT})",
            model = "${Build.MANUFACTURER} ${Build.MODEL}",
            cpu = socName(),
            cores = cores,
            threads = threads,
            governor = readSys("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            cpuFreqKhz = cpuFrequenciesKhz(cores),
            thermalState = thermalStatus(context),
            memoryBytes = memory.totalMem,
        )
    }

    /** Proportional set size of this process in bytes (what the report calls peak memory on Android). */
    fun pssBytes(): Long = Debug.getPss() * 1024L

    fun socName(): String = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
        "${Build.SOC_MANUFACTURER} ${Build.SOC_MODEL}"
    } else {
        Build.HARDWARE
    } + " (${Build.SUPPORTED_ABIS.firstOrNull() ?: "?"})"

    /** Current frequency of each core, or null when the kernel hides them. */
    fun cpuFrequenciesKhz(cores: Int): List<Int>? {
        val freqs = (0 until cores).map { readSys("/sys/devices/system/cpu/cpu$it/cpufreq/scaling_cur_freq")?.toIntOrNull() }
        return if (freqs.any { it == null }) null else freqs.filterNotNull()
    }

    /** PowerManager's thermal status as its constant's name (NONE, LIGHT, ... SHUTDOWN). */
    fun thermalStatus(context: Context): String? {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.Q) return null
        val pm = context.getSystemService(Context.POWER_SERVICE) as PowerManager
        return thermalName(pm.currentThermalStatus)
    }

    fun thermalName(status: Int): String = when (status) {
        PowerManager.THERMAL_STATUS_NONE -> "NONE"
        PowerManager.THERMAL_STATUS_LIGHT -> "LIGHT"
        PowerManager.THERMAL_STATUS_MODERATE -> "MODERATE"
        PowerManager.THERMAL_STATUS_SEVERE -> "SEVERE"
        PowerManager.THERMAL_STATUS_CRITICAL -> "CRITICAL"
        PowerManager.THERMAL_STATUS_EMERGENCY -> "EMERGENCY"
        PowerManager.THERMAL_STATUS_SHUTDOWN -> "SHUTDOWN"
        else -> "UNKNOWN($status)"
    }

    private fun readSys(path: String): String? = try {
        File(path).readText().trim().ifEmpty { null }
    } catch (e: Exception) {
        null
    }
}
