import DoTCoMKit
import Darwin
import Foundation

/// What the report records about the phone, and its memory and thermal readings.
enum DeviceInfo {
    /// `iPhone15,2` style identifier (the marketing name is not available to apps).
    static var modelIdentifier: String {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// `ProcessInfo.thermalState` in the report's words: nominal, fair, serious, critical.
    static var thermalState: String {
        switch ProcessInfo.processInfo.thermalState {
        case .nominal: return "nominal"
        case .fair: return "fair"
        case .serious: return "serious"
        case .critical: return "critical"
        @unknown default: return "unknown"
        }
    }

    /// The process's `phys_footprint`: the figure Xcode's memory gauge and jetsam use,
    /// so it is the memory that decides whether a model can ship.
    static func physFootprint() -> Int? {
        var info = task_vm_info_data_t()
        var count = mach_msg_type_number_t(MemoryLayout<task_vm_info_data_t>.size / MemoryLayout<natural_t>.size)
        let kr = withUnsafeMutablePointer(to: &info) { pointer in
            pointer.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(TASK_VM_INFO), $0, &count)
            }
        }
        return kr == KERN_SUCCESS ? Int(info.phys_footprint) : nil
    }

    /// `iOS 17.5.1`; from ProcessInfo rather than UIDevice, which is main-actor bound.
    static var osVersion: String {
        let v = ProcessInfo.processInfo.operatingSystemVersion
        return "iOS \(v.majorVersion).\(v.minorVersion).\(v.patchVersion)"
    }

    static func reportDevice(threads: Int = 0) -> LatencyReport.Device {
        LatencyReport.Device(
            platform: "ios",
            os: osVersion,
            model: modelIdentifier,
            cpu: nil,
            cores: ProcessInfo.processInfo.activeProcessorCount,
            threads: threads,
            thermalState: thermalState,
            memoryBytes: Int(ProcessInfo.processInfo.physicalMemory))
    }
}
