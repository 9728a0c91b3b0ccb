#!/usr/bin/env python3
"""Write DoTCoMDemo.xcodeproj (project.pbxproj, shared scheme, workspace) from the sources on disk.

Why generated: a hand-edited .pbxproj drifts from the files on disk (a new Swift file
that is not in the Sources phase compiles nowhere and fails nothing on Linux). This
script lists every Swift file of the app and of the benchmark tests, and writes the
project with stable object IDs (hashes of their role), so re-running it after adding a
file gives a minimal diff. Xcode reads and rewrites the result like any project.

    python3 ios_demo/tools/gen_pbxproj.py          # (re)write the project
    python3 ios_demo/tools/gen_pbxproj.py --check  # exit 1 if the project is out of date

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

IOS_DEMO = Path(__file__).resolve().parents[1]
PROJECT = IOS_DEMO / "DoTCoMDemo.xcodeproj"
APP, TESTS, KIT = "DoTCoMDemo", "DoTCoMDemoBenchmarks", "DoTCoMKit"

#: ExecuTorch's prebuilt frameworks through SwiftPM: the branch `swiftpm-<version>` of
#: the repository matches the executorch wheel that exported the models (1.5.1).
EXECUTORCH_URL = "https://github.com/pytorch/executorch"
EXECUTORCH_BRANCH = "swiftpm-1.5.1"
EXECUTORCH_PRODUCTS = ("executorch", "backend_xnnpack", "backend_coreml", "kernels_optimized")
DEPLOYMENT_TARGET = "17.0"
BUNDLE_PREFIX = "org.dotcom-mobile"


def oid(*parts: str) -> str:
    """Stable 24-hex-digit object ID for an object's role."""
    return hashlib.md5("/".join(parts).encode()).hexdigest()[:24].upper()


def q(value: str) -> str:
    """Quote a plist string when it is not a bare word."""
    bare = value and all(c.isalnum() or c in "._/$" for c in value)
    if bare:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plist(value, indent: int) -> str:
    """Old-style plist text of a dict / list / str, tab-indented like Xcode writes it."""
    tabs = "\t" * indent
    if isinstance(value, dict):
        inner = "".join(f"{tabs}\t{q(k) if not k.startswith('ID:') else k[3:]} = {plist(v, indent + 1)};\n"
                        for k, v in value.items())
        return "{\n" + inner + tabs + "}"
    if isinstance(value, (list, tuple)):
        inner = "".join(f"{tabs}\t{plist(v, indent + 1)},\n" for v in value)
        return "(\n" + inner + tabs + ")"
    return q(str(value))


class Project:
    """Collects objects by ISA section and renders the file."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, tuple[str, dict]]] = {}

    def add(self, object_id: str, comment: str, body: dict) -> str:
        self.objects.setdefault(body["isa"], {})[object_id] = (comment, body)
        return object_id

    def render(self, root: str) -> str:
        out = ["// !$*UTF8*$!\n{\n\tarchiveVersion = 1;\n\tclasses = {\n\t};\n\tobjectVersion = 60;\n\tobjects = {\n"]
        for isa in sorted(self.objects):
            out.append(f"\n/* Begin {isa} section */\n")
            for object_id, (comment, body) in sorted(self.objects[isa].items()):
                out.append(f"\t\t{object_id} /* {comment} */ = {plist(body, 2)};\n")
            out.append(f"/* End {isa} section */\n")
        out.append(f"\t}};\n\trootObject = {root} /* Project object */;\n}}\n")
        return "".join(out)


def ref(object_id: str) -> str:
    # Rendered bare (IDs are bare words); comments are optional in pbxproj.
    return object_id


def build_configs(p: Project, owner: str, debug: dict, release: dict) -> str:
    ids = []
    for name, settings in (("Debug", debug), ("Release", release)):
        ids.append(p.add(oid(owner, "config", name), name, {
            "isa": "XCBuildConfiguration", "buildSettings": dict(sorted(settings.items())), "name": name}))
    return p.add(oid(owner, "configlist"), f"Build configuration list for {owner}", {
        "isa": "XCConfigurationList", "buildConfigurations": ids,
        "defaultConfigurationIsVisible": "0", "defaultConfigurationName": "Release"})


def generate() -> dict[Path, str]:
    app_sources = sorted(f.name for f in (IOS_DEMO / APP).glob("*.swift"))
    test_sources = sorted(f.name for f in (IOS_DEMO / TESTS).glob("*.swift"))
    p = Project()

    # Packages: the local DoTCoMKit and the remote ExecuTorch.
    kit_pkg = p.add(oid("pkg", KIT), f'XCLocalSwiftPackageReference "{KIT}"', {
        "isa": "XCLocalSwiftPackageReference", "relativePath": KIT})
    et_pkg = p.add(oid("pkg", "executorch"), 'XCRemoteSwiftPackageReference "executorch"', {
        "isa": "XCRemoteSwiftPackageReference", "repositoryURL": EXECUTORCH_URL,
        "requirement": {"branch": EXECUTORCH_BRANCH, "kind": "branch"}})
    products = {KIT: p.add(oid("product", KIT), KIT, {
        "isa": "XCSwiftPackageProductDependency", "package": kit_pkg, "productName": KIT})}
    for name in EXECUTORCH_PRODUCTS:
        products[name] = p.add(oid("product", name), name, {
            "isa": "XCSwiftPackageProductDependency", "package": et_pkg, "productName": name})

    def file_ref(group: str, name: str, kind: str) -> str:
        return p.add(oid("file", group, name), name, {
            "isa": "PBXFileReference", "lastKnownFileType": kind, "path": name, "sourceTree": "<group>"})

    def build_file(target: str, name: str, file_id: str | None = None, product: str | None = None) -> str:
        body = {"isa": "PBXBuildFile"}
        if file_id:
            body["fileRef"] = file_id
        if product:
            body["productRef"] = product
        phase = "Frameworks" if product else ("Sources" if name.endswith(".swift") else "Resources")
        return p.add(oid("build", target, name), f"{name} in {phase}", body)

    # Files and groups.
    app_refs = {n: file_ref(APP, n, "sourcecode.swift") for n in app_sources}
    models_ref = file_ref(APP, "Models", "folder")
    test_refs = {n: file_ref(TESTS, n, "sourcecode.swift") for n in test_sources}
    bench_models_ref = file_ref(TESTS, "BenchmarkModels", "folder")
    app_product = p.add(oid("productfile", APP), f"{APP}.app", {
        "isa": "PBXFileReference", "explicitFileType": "wrapper.application", "includeInIndex": "0",
        "path": f"{APP}.app", "sourceTree": "BUILT_PRODUCTS_DIR"})
    test_product = p.add(oid("productfile", TESTS), f"{TESTS}.xctest", {
        "isa": "PBXFileReference", "explicitFileType": "wrapper.cfbundle", "includeInIndex": "0",
        "path": f"{TESTS}.xctest", "sourceTree": "BUILT_PRODUCTS_DIR"})
    app_group = p.add(oid("group", APP), APP, {
        "isa": "PBXGroup", "children": [*app_refs.values(), models_ref], "path": APP, "sourceTree": "<group>"})
    test_group = p.add(oid("group", TESTS), TESTS, {
        "isa": "PBXGroup", "children": [*test_refs.values(), bench_models_ref], "path": TESTS, "sourceTree": "<group>"})
    products_group = p.add(oid("group", "Products"), "Products", {
        "isa": "PBXGroup", "children": [app_product, test_product], "name": "Products", "sourceTree": "<group>"})
    main_group = p.add(oid("group", "main"), "main", {
        "isa": "PBXGroup", "children": [app_group, test_group, products_group], "sourceTree": "<group>"})

    # Build phases.
    app_sources_phase = p.add(oid("phase", APP, "sources"), "Sources", {
        "isa": "PBXSourcesBuildPhase", "buildActionMask": "2147483647",
        "files": [build_file(APP, n, file_id=r) for n, r in app_refs.items()],
        "runOnlyForDeploymentPostprocessing": "0"})
    app_frameworks = p.add(oid("phase", APP, "frameworks"), "Frameworks", {
        "isa": "PBXFrameworksBuildPhase", "buildActionMask": "2147483647",
        "files": [build_file(APP, n, product=products[n]) for n in (KIT, *EXECUTORCH_PRODUCTS)],
        "runOnlyForDeploymentPostprocessing": "0"})
    app_resources = p.add(oid("phase", APP, "resources"), "Resources", {
        "isa": "PBXResourcesBuildPhase", "buildActionMask": "2147483647",
        "files": [build_file(APP, "Models", file_id=models_ref)], "runOnlyForDeploymentPostprocessing": "0"})
    test_sources_phase = p.add(oid("phase", TESTS, "sources"), "Sources", {
        "isa": "PBXSourcesBuildPhase", "buildActionMask": "2147483647",
        "files": [build_file(TESTS, n, file_id=r) for n, r in test_refs.items()],
        "runOnlyForDeploymentPostprocessing": "0"})
    test_frameworks = p.add(oid("phase", TESTS, "frameworks"), "Frameworks", {
        "isa": "PBXFrameworksBuildPhase", "buildActionMask": "2147483647", "files": [],
        "runOnlyForDeploymentPostprocessing": "0"})
    test_resources = p.add(oid("phase", TESTS, "resources"), "Resources", {
        "isa": "PBXResourcesBuildPhase", "buildActionMask": "2147483647",
        "files": [build_file(TESTS, "BenchmarkModels", file_id=bench_models_ref)],
        "runOnlyForDeploymentPostprocessing": "0"})

    # Build settings.
    common_debug = {
        "ALWAYS_SEARCH_USER_PATHS": "NO", "CLANG_ENABLE_MODULES": "YES", "CLANG_ENABLE_OBJC_ARC": "YES",
        "COPY_PHASE_STRIP": "NO", "DEBUG_INFORMATION_FORMAT": "dwarf", "ENABLE_STRICT_OBJC_MSGSEND": "YES",
        "ENABLE_TESTABILITY": "YES", "ENABLE_USER_SCRIPT_SANDBOXING": "YES", "GCC_C_LANGUAGE_STANDARD": "gnu17",
        "GCC_OPTIMIZATION_LEVEL": "0", "GCC_PREPROCESSOR_DEFINITIONS": ["DEBUG=1", "$(inherited)"],
        "IPHONEOS_DEPLOYMENT_TARGET": DEPLOYMENT_TARGET, "MTL_ENABLE_DEBUG_INFO": "INCLUDE_SOURCE",
        "ONLY_ACTIVE_ARCH": "YES", "SDKROOT": "iphoneos",
        "SWIFT_ACTIVE_COMPILATION_CONDITIONS": "DEBUG $(inherited)", "SWIFT_OPTIMIZATION_LEVEL": "-Onone",
    }
    common_release = {
        "ALWAYS_SEARCH_USER_PATHS": "NO", "CLANG_ENABLE_MODULES": "YES", "CLANG_ENABLE_OBJC_ARC": "YES",
        "COPY_PHASE_STRIP": "NO", "DEBUG_INFORMATION_FORMAT": "dwarf-with-dsym", "ENABLE_NS_ASSERTIONS": "NO",
        "ENABLE_STRICT_OBJC_MSGSEND": "YES", "ENABLE_USER_SCRIPT_SANDBOXING": "YES",
        "GCC_C_LANGUAGE_STANDARD": "gnu17", "IPHONEOS_DEPLOYMENT_TARGET": DEPLOYMENT_TARGET,
        "MTL_ENABLE_DEBUG_INFO": "NO", "SDKROOT": "iphoneos", "SWIFT_COMPILATION_MODE": "wholemodule",
        "VALIDATE_PRODUCT": "YES",
    }
    app_settings = {
        "CODE_SIGN_STYLE": "Automatic", "CURRENT_PROJECT_VERSION": "1", "ENABLE_PREVIEWS": "YES",
        "GENERATE_INFOPLIST_FILE": "YES", "INFOPLIST_KEY_CFBundleDisplayName": "DoTCoM",
        "INFOPLIST_KEY_LSSupportsOpeningDocumentsInPlace": "YES",
        "INFOPLIST_KEY_NSCameraUsageDescription": "Classify a photo taken with the camera.",
        "INFOPLIST_KEY_UIApplicationSceneManifest_Generation": "YES",
        "INFOPLIST_KEY_UIApplicationSupportsIndirectInputEvents": "YES",
        "INFOPLIST_KEY_UIFileSharingEnabled": "YES", "INFOPLIST_KEY_UILaunchScreen_Generation": "YES",
        "INFOPLIST_KEY_UISupportedInterfaceOrientations_iPad":
            "UIInterfaceOrientationPortrait UIInterfaceOrientationPortraitUpsideDown "
            "UIInterfaceOrientationLandscapeLeft UIInterfaceOrientationLandscapeRight",
        "INFOPLIST_KEY_UISupportedInterfaceOrientations_iPhone":
            "UIInterfaceOrientationPortrait UIInterfaceOrientationLandscapeLeft UIInterfaceOrientationLandscapeRight",
        "IPHONEOS_DEPLOYMENT_TARGET": DEPLOYMENT_TARGET,
        "LD_RUNPATH_SEARCH_PATHS": ["$(inherited)", "@executable_path/Frameworks"],
        "MARKETING_VERSION": "1.0",
        # ExecuTorch backends and kernels register from static initialisers that the
        # linker drops from static archives unless everything is loaded.
        "OTHER_LDFLAGS": ["$(inherited)", "-all_load"],
        "PRODUCT_BUNDLE_IDENTIFIER": f"{BUNDLE_PREFIX}.{APP}", "PRODUCT_NAME": "$(TARGET_NAME)",
        "SWIFT_EMIT_LOC_STRINGS": "YES", "SWIFT_VERSION": "5.0", "TARGETED_DEVICE_FAMILY": "1,2",
    }
    test_settings = {
        "BUNDLE_LOADER": "$(TEST_HOST)", "CODE_SIGN_STYLE": "Automatic", "CURRENT_PROJECT_VERSION": "1",
        "GENERATE_INFOPLIST_FILE": "YES", "IPHONEOS_DEPLOYMENT_TARGET": DEPLOYMENT_TARGET,
        "MARKETING_VERSION": "1.0", "PRODUCT_BUNDLE_IDENTIFIER": f"{BUNDLE_PREFIX}.{TESTS}",
        "PRODUCT_NAME": "$(TARGET_NAME)", "SWIFT_EMIT_LOC_STRINGS": "NO", "SWIFT_VERSION": "5.0",
        "TARGETED_DEVICE_FAMILY": "1,2",
        "TEST_HOST": f"$(BUILT_PRODUCTS_DIR)/{APP}.app/$(BUNDLE_EXECUTABLE_FOLDER_PATH)/{APP}",
    }
    # The benchmark runs the Release build (the scheme's Test action): the app must stay
    # testable there for `@testable import DoTCoMDemo`.
    app_list = build_configs(p, APP, app_settings, {**app_settings, "ENABLE_TESTABILITY": "YES"})
    test_list = build_configs(p, TESTS, test_settings, test_settings)
    project_list = build_configs(p, "project", common_debug, common_release)

    # Targets.
    app_target = oid("target", APP)
    test_target = oid("target", TESTS)
    p.add(app_target, APP, {
        "isa": "PBXNativeTarget", "buildConfigurationList": app_list,
        "buildPhases": [app_sources_phase, app_frameworks, app_resources], "buildRules": [],
        "dependencies": [], "name": APP,
        "packageProductDependencies": [products[n] for n in (KIT, *EXECUTORCH_PRODUCTS)],
        "productName": APP, "productReference": app_product,
        "productType": "com.apple.product-type.application"})
    proxy = p.add(oid("proxy", TESTS), "PBXContainerItemProxy", {
        "isa": "PBXContainerItemProxy", "containerPortal": oid("project"), "proxyType": "1",
        "remoteGlobalIDString": app_target, "remoteInfo": APP})
    dependency = p.add(oid("dependency", TESTS), "PBXTargetDependency", {
        "isa": "PBXTargetDependency", "target": app_target, "targetProxy": proxy})
    # The tests reach DoTCoMKit and ExecuTorch through the host app (BUNDLE_LOADER):
    # linking the static products a second time would duplicate their registrations.
    p.add(test_target, TESTS, {
        "isa": "PBXNativeTarget", "buildConfigurationList": test_list,
        "buildPhases": [test_sources_phase, test_frameworks, test_resources], "buildRules": [],
        "dependencies": [dependency], "name": TESTS, "packageProductDependencies": [],
        "productName": TESTS, "productReference": test_product,
        "productType": "com.apple.product-type.bundle.unit-test"})

    root = p.add(oid("project"), "Project object", {
        "isa": "PBXProject",
        "attributes": {
            "BuildIndependentTargetsInParallel": "1", "LastSwiftUpdateCheck": "1500", "LastUpgradeCheck": "1500",
            "TargetAttributes": {
                f"ID:{app_target}": {"CreatedOnToolsVersion": "15.0"},
                f"ID:{test_target}": {"CreatedOnToolsVersion": "15.0", "TestTargetID": app_target},
            },
        },
        "buildConfigurationList": project_list, "compatibilityVersion": "Xcode 15.0",
        "developmentRegion": "en", "hasScannedForEncodings": "0", "knownRegions": ["en", "Base"],
        "mainGroup": main_group, "packageReferences": [kit_pkg, et_pkg], "productRefGroup": products_group,
        "projectDirPath": "", "projectRoot": "", "targets": [app_target, test_target]})

    pbxproj = p.render(root)
    return {
        PROJECT / "project.pbxproj": pbxproj,
        PROJECT / "project.xcworkspace" / "contents.xcworkspacedata": WORKSPACE,
        PROJECT / "xcshareddata" / "xcschemes" / f"{APP}.xcscheme": scheme(app_target, test_target),
    }


WORKSPACE = """<?xml version="1.0" encoding="UTF-8"?>
<Workspace
   version = "1.0">
   <FileRef
      location = "self:">
   </FileRef>
</Workspace>
"""


def scheme(app_target: str, test_target: str) -> str:
    """Shared scheme: `xcodebuild test -scheme DoTCoMDemo` needs one on a fresh checkout."""
    def buildable(target: str, file: str, name: str) -> str:
        return (f'            <BuildableReference\n'
                f'               BuildableIdentifier = "primary"\n'
                f'               BlueprintIdentifier = "{target}"\n'
                f'               BuildableName = "{file}"\n'
                f'               BlueprintName = "{name}"\n'
                f'               ReferencedContainer = "container:{APP}.xcodeproj">\n'
                f'            </BuildableReference>\n')
    app_ref = buildable(app_target, f"{APP}.app", APP)
    test_ref = buildable(test_target, f"{TESTS}.xctest", TESTS)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Scheme
   LastUpgradeVersion = "1500"
   version = "1.7">
   <BuildAction
      parallelizeBuildables = "YES"
      buildImplicitDependencies = "YES">
      <BuildActionEntries>
         <BuildActionEntry
            buildForTesting = "YES"
            buildForRunning = "YES"
            buildForProfiling = "YES"
            buildForArchiving = "YES"
            buildForAnalyzing = "YES">
{app_ref}         </BuildActionEntry>
      </BuildActionEntries>
   </BuildAction>
   <TestAction
      buildConfiguration = "Release"
      selectedDebuggerIdentifier = ""
      selectedLauncherIdentifier = "Xcode.IDEFoundation.Launcher.PosixSpawn"
      shouldUseLaunchSchemeArgsEnv = "NO">
      <Testables>
         <TestableReference
            skipped = "NO"
            parallelizable = "NO">
{test_ref}         </TestableReference>
      </Testables>
   </TestAction>
   <LaunchAction
      buildConfiguration = "Debug"
      selectedDebuggerIdentifier = "Xcode.DebuggerFoundation.Debugger.LLDB"
      selectedLauncherIdentifier = "Xcode.DebuggerFoundation.Launcher.LLDB"
      launchStyle = "0"
      useCustomWorkingDirectory = "NO"
      ignoresPersistentStateOnLaunch = "NO"
      debugDocumentVersioning = "YES"
      debugServiceExtension = "internal"
      allowLocationSimulation = "YES">
      <BuildableProductRunnable
         runnableDebuggingMode = "0">
{app_ref.replace("            ", "         ")}      </BuildableProductRunnable>
   </LaunchAction>
   <ProfileAction
      buildConfiguration = "Release"
      shouldUseLaunchSchemeArgsEnv = "YES"
      savedToolIdentifier = ""
      useCustomWorkingDirectory = "NO"
      debugDocumentVersioning = "YES">
      <BuildableProductRunnable
         runnableDebuggingMode = "0">
{app_ref.replace("            ", "         ")}      </BuildableProductRunnable>
   </ProfileAction>
   <AnalyzeAction
      buildConfiguration = "Debug">
   </AnalyzeAction>
   <ArchiveAction
      buildConfiguration = "Release"
      revealArchiveInOrganizer = "YES">
   </ArchiveAction>
</Scheme>
"""


def verify() -> list[str]:
    """Problems found by reading the project back with the PyPI `pbxproj` parser.

    Independent of the generator: every Swift file on disk is in its target's Sources
    phase, and the app links the ExecuTorch products from the remote package (on the
    pinned branch) and DoTCoMKit, with -all_load in every configuration.
    """
    from pbxproj import XcodeProject

    project = XcodeProject.load(str(PROJECT / "project.pbxproj"))
    objects = project.objects
    problems = []
    for target_name, folder in ((APP, APP), (TESTS, TESTS)):
        targets = objects.get_targets(target_name)
        if len(targets) != 1:
            problems.append(f"target {target_name} missing")
            continue
        compiled = set()
        for phase_id in targets[0].buildPhases:
            phase = objects[phase_id]
            if phase.isa == "PBXSourcesBuildPhase":
                compiled |= {objects[objects[b].fileRef].path for b in phase.files}
        on_disk = {f.name for f in (IOS_DEMO / folder).glob("*.swift")}
        if compiled != on_disk:
            problems.append(f"{target_name}: not compiled {sorted(on_disk - compiled)}, missing {sorted(compiled - on_disk)}")
    remotes = objects.get_objects_in_section("XCRemoteSwiftPackageReference")
    if [r.repositoryURL for r in remotes] != [EXECUTORCH_URL] or remotes[0].requirement["branch"] != EXECUTORCH_BRANCH:
        problems.append(f"ExecuTorch package is not {EXECUTORCH_URL} @ {EXECUTORCH_BRANCH}")
    app = objects.get_targets(APP)[0]
    linked = {objects[d].productName for d in app.packageProductDependencies}
    if linked != {KIT, *EXECUTORCH_PRODUCTS}:
        problems.append(f"{APP} links {sorted(linked)}")
    for config_id in objects[app.buildConfigurationList].buildConfigurations:
        config = objects[config_id]
        if "-all_load" not in config.buildSettings["OTHER_LDFLAGS"]:
            problems.append(f"{APP} {config.name}: -all_load missing from OTHER_LDFLAGS")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the project on disk is out of date")
    parser.add_argument("--verify", action="store_true",
                        help="also parse the project with the PyPI pbxproj package and check its references")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generate().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(IOS_DEMO)))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        print(f"wrote {path.relative_to(IOS_DEMO)}")
    if stale:
        print("out of date (run ios_demo/tools/gen_pbxproj.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    if args.verify:
        problems = verify()
        for problem in problems:
            print(f"project.pbxproj: {problem}", file=sys.stderr)
        if problems:
            return 1
        print("project.pbxproj: parsed with pbxproj, references ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
