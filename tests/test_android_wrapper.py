"""The Android demo's Gradle wrapper: what `./gradlew` needs on a user's machine.

Gradle itself cannot be downloaded here, so the wrapper is run against a local `file:` URL
serving a zip that is not Gradle: a working wrapper jar reads the properties, fetches the
file and then refuses it because its SHA-256 differs from the pinned `distributionSha256Sum`.
That exercises the launcher script, the jar and the checksum pin without any network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "android_demo"
WRAPPER = DEMO / "gradle" / "wrapper"
JAR = WRAPPER / "gradle-wrapper.jar"
PROPERTIES = WRAPPER / "gradle-wrapper.properties"

# Minimum Gradle for each Android Gradle plugin minor version (developer.android.com,
# "Android Gradle plugin and Gradle compatibility").
AGP_MIN_GRADLE = {
    (8, 5): (8, 7),
    (8, 6): (8, 7),
    (8, 7): (8, 9),
    (8, 8): (8, 10, 2),
    (8, 9): (8, 11, 1),
    (8, 10): (8, 11, 1),
}


def read_properties(path: Path) -> dict[str, str]:
    """Java .properties, as far as the wrapper's file uses the format (key=value, \\: escapes)."""
    props = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip().replace("\\:", ":")
    return props


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_wrapper_jar_is_gradles_wrapper():
    assert JAR.is_file(), f"{JAR} is missing: ./gradlew cannot run"
    with zipfile.ZipFile(JAR) as jar:
        assert jar.testzip() is None
        names = set(jar.namelist())
        manifest = jar.read("META-INF/MANIFEST.MF").decode()
    assert "org/gradle/wrapper/GradleWrapperMain.class" in names
    assert "Gradle Wrapper" in manifest


def test_properties_pin_a_gradle_the_android_plugin_accepts():
    props = read_properties(PROPERTIES)
    url = re.fullmatch(r"https://services\.gradle\.org/distributions/gradle-([0-9.]+)-(bin|all)\.zip",
                       props["distributionUrl"])
    assert url, props["distributionUrl"]
    assert re.fullmatch(r"[0-9a-f]{64}", props.get("distributionSha256Sum", "")), "no distributionSha256Sum"

    catalog = (DEMO / "gradle" / "libs.versions.toml").read_text()
    agp = re.search(r'^agp\s*=\s*"([0-9.]+)"', catalog, re.M).group(1)
    minimum = AGP_MIN_GRADLE.get(version_tuple(agp)[:2])
    assert minimum is not None, f"AGP {agp}: add its minimum Gradle to AGP_MIN_GRADLE"
    assert version_tuple(url.group(1)) >= minimum, f"AGP {agp} needs Gradle {minimum}, wrapper has {url.group(1)}"


def test_gradlew_runs_the_wrapper_and_enforces_the_checksum(tmp_path):
    assert shutil.which("java"), "java (17) is needed to run the Gradle wrapper"
    pinned = read_properties(PROPERTIES)["distributionSha256Sum"]
    version = re.search(r"gradle-([0-9.]+)-", read_properties(PROPERTIES)["distributionUrl"]).group(1)

    fake = tmp_path / f"gradle-{version}-bin.zip"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("not-gradle.txt", "a distribution whose checksum cannot match")
    project = tmp_path / "project"
    shutil.copytree(WRAPPER, project / "gradle" / "wrapper")
    shutil.copy2(DEMO / "gradlew", project / "gradlew")
    props = PROPERTIES.read_text()
    props = re.sub(r"^distributionUrl=.*$", lambda _: "distributionUrl=" + fake.as_uri().replace(":", "\\:", 1),
                   props, flags=re.M)
    (project / "gradle" / "wrapper" / "gradle-wrapper.properties").write_text(props)

    proc = subprocess.run(["sh", "gradlew", "--version"], cwd=project, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GRADLE_USER_HOME": str(tmp_path / "gradle-home")})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Verification of Gradle distribution failed" in output, output
    assert f"Expected checksum: '{pinned}'" in output, output
