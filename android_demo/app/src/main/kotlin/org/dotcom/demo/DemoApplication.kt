package org.dotcom.demo

import android.app.Application
import android.system.ErrnoException
import android.system.Os
import android.util.Log

/** Process-wide setup before any activity loads ExecuTorch. */
class DemoApplication : Application() {
    override fun onCreate() {
        super.onCreate()
        // The QNN flavour's HTP libraries are found through ADSP_LIBRARY_PATH; point it at the
        // APK's native library folder (harmless for the XNNPACK and Vulkan flavours).
        try {
            Os.setenv("ADSP_LIBRARY_PATH", applicationInfo.nativeLibraryDir, true)
        } catch (e: ErrnoException) {
            Log.w("DotcomDemo", "cannot set ADSP_LIBRARY_PATH", e)
        }
    }
}
