// The platform-free core: statistics, report JSON, manifest parsing, preprocessing, top-k.
// Plain Kotlin/JVM with no dependency beyond the standard library, so it is unit-tested on any
// machine (tools/check.sh does the same without Gradle) and shared by the app.
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly(libs.junit.platform.launcher)
}

tasks.test {
    useJUnitPlatform()
    // The statistics test vectors every runner of the project must reproduce.
    systemProperty(
        "dotcom.statsVectors",
        rootDir.resolve("../report/schemas/stats_vectors.json").absolutePath,
    )
}
