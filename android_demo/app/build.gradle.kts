plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

// xnnpack | vulkan | qnn: which ExecuTorch AAR the app links (see gradle.properties and README.md).
val executorchFlavor: String =
    providers.gradleProperty("dotcom.executorchFlavor").getOrElse("xnnpack").trim().lowercase()
val executorchLibrary =
    when (executorchFlavor) {
        "xnnpack" -> libs.executorch.android
        "vulkan" -> libs.executorch.android.vulkan
        "qnn" -> libs.executorch.android.qnn
        else -> throw GradleException("dotcom.executorchFlavor must be xnnpack, vulkan or qnn, got '$executorchFlavor'")
    }

// -Pdotcom.executorchAar=path/to/executorch.aar links an AAR built from source
// (ExecuTorch's scripts/build_android_library.sh) instead of the Maven one: for a flavour Maven
// Central lacks at the pinned version, or a backend no published AAR has.
val executorchAar: File? =
    providers.gradleProperty("dotcom.executorchAar").getOrElse("").trim().takeIf { it.isNotEmpty() }?.let {
        val aar = rootProject.file(it)
        if (!aar.isFile) throw GradleException("dotcom.executorchAar: no such file $aar")
        aar
    }
val executorchVersionLabel: String =
    executorchAar?.let { "local ${it.name}" } ?: libs.versions.executorch.get()

android {
    namespace = "org.dotcom.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.dotcom.demo"
        minSdk = 28
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        buildConfigField("String", "EXECUTORCH_FLAVOR", "\"$executorchFlavor\"")
        buildConfigField("String", "EXECUTORCH_VERSION", "\"$executorchVersionLabel\"")
        ndk {
            // The XNNPACK and Vulkan AARs ship arm64-v8a and x86_64 (emulators); QNN only arm64-v8a.
            abiFilters += if (executorchFlavor == "qnn") listOf("arm64-v8a") else listOf("arm64-v8a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("debug")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures {
        compose = true
        buildConfig = true
    }

    sourceSets["main"].assets.srcDir(layout.buildDirectory.dir("generated/dotcomAssets"))

    packaging {
        resources.excludes += "/META-INF/{AL2.0,LGPL2.1}"
        // QNN: the Hexagon DSP loads its skel libraries from a folder (ADSP_LIBRARY_PATH, set to
        // nativeLibraryDir in DemoApplication), so they must be extracted from the APK on install.
        jniLibs.useLegacyPackaging = executorchFlavor == "qnn"
    }
    androidResources {
        // .pte files are mmapped by ExecuTorch: keep them uncompressed in the APK.
        noCompress += "pte"
    }
}

kotlin {
    jvmToolchain(17)
}

// -Pdotcom.defaultModel=path/to/model.pte bundles that artifact and its manifest as the default model.
val copyDefaultModel by tasks.registering(Copy::class) {
    val model = providers.gradleProperty("dotcom.defaultModel").getOrElse("").trim()
    into(layout.buildDirectory.dir("generated/dotcomAssets/models"))
    if (model.isNotEmpty()) {
        val pte = rootProject.file(model)
        if (!pte.isFile) throw GradleException("dotcom.defaultModel: no such file $pte")
        val manifest = File(pte.parentFile, pte.nameWithoutExtension + ".json")
        if (!manifest.isFile) throw GradleException("dotcom.defaultModel: the manifest $manifest is missing")
        from(pte, manifest)
    }
}
tasks.named("preBuild") { dependsOn(copyDefaultModel) }

dependencies {
    implementation(project(":core"))
    val localAar = executorchAar
    if (localAar == null) {
        implementation(executorchLibrary)
    } else {
        // A bare AAR has no POM: declare what the Maven artifact would have brought along.
        implementation(files(localAar))
        implementation(libs.fbjni)
        implementation(libs.soloader.nativeloader)
        if (executorchFlavor == "qnn") implementation(libs.qnn.runtime)
    }
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.compose)
    implementation(libs.androidx.lifecycle.runtime.ktx)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(platform(libs.androidx.compose.bom))
    implementation(libs.androidx.compose.ui)
    implementation(libs.androidx.compose.ui.tooling.preview)
    implementation(libs.androidx.compose.material3)
    implementation(libs.androidx.camera.core)
    implementation(libs.androidx.camera.camera2)
    implementation(libs.androidx.camera.lifecycle)
    implementation(libs.androidx.camera.view)
    debugImplementation(libs.androidx.compose.ui.tooling)
}
