//! The default of `PASSWORD_HASH_CONCURRENCY`: one hash per core, and no more than fit in half
//! the memory the process may use. Each argon2id hash holds [`HASH_MEMORY_KIB`] for its whole
//! run, so on a 32-core node behind a 512 MiB limit one hash per core (608 MiB) would get the
//! process OOM-killed by a burst of logins; 13 at once fit in half of it, and a login past
//! them is answered 503 with `Retry-After`.
//!
//! The limit is the smallest of the process's cgroup and its ancestors: cgroup v2
//! `memory.max`, or v1 `memory.limit_in_bytes`, under `/sys/fs/cgroup`.

/// Memory one password hash holds (argon2id, m = 19456 KiB, OWASP's parameters).
pub const HASH_MEMORY_KIB: u32 = 19 * 1024;

/// Where the cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Cores, capped so the hashes take at most half of `memory_limit`; at least one.
pub fn hash_concurrency(cores: usize, memory_limit: Option<u64>) -> usize {
    let hash_bytes = u64::from(HASH_MEMORY_KIB) * 1024;
    let by_memory = memory_limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit / 2 / hash_bytes).unwrap_or(usize::MAX)
    });
    cores.min(by_memory).max(1)
}

/// The memory limit of this process, if any cgroup sets one.
pub fn memory_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    limit_of(&own, |path| std::fs::read_to_string(path).ok())
}

/// The smallest memory limit set on the cgroups named by `proc_self_cgroup` (the content of
/// `/proc/self/cgroup`) or their ancestors, read by `read` (a path to the file's content).
/// The mount's own root is read too: inside a container it is the container's cgroup.
pub fn limit_of(proc_self_cgroup: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let mut files = vec![
        format!("{CGROUP_ROOT}/memory.max"),
        format!("{CGROUP_ROOT}/memory/memory.limit_in_bytes"),
    ];
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (dir, file) = if controllers.is_empty() {
            (CGROUP_ROOT.to_owned(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (format!("{CGROUP_ROOT}/memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        let mut at = path.trim_end_matches('/');
        while !at.is_empty() {
            files.push(format!("{dir}{at}/{file}"));
            at = at.rsplit_once('/').map_or("", |(parent, _)| parent);
        }
    }
    files
        .iter()
        .filter_map(|file| read(file).and_then(|content| parse_limit(&content)))
        .min()
}

/// A limit file's content: bytes, or no limit (`max` in v2; v1's "unlimited" is a number near
/// 2^63).
fn parse_limit(content: &str) -> Option<u64> {
    content
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|bytes| *bytes < 1 << 62)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const MIB: u64 = 1024 * 1024;

    fn limit(proc_self_cgroup: &str, files: &[(&str, &str)]) -> Option<u64> {
        let files: HashMap<&str, &str> = files.iter().copied().collect();
        limit_of(proc_self_cgroup, |path| {
            files.get(path).map(|c| (*c).to_owned())
        })
    }

    #[test]
    fn a_512_mib_limit_caps_32_cores_at_13_hashes() {
        let limit = limit("0::/\n", &[("/sys/fs/cgroup/memory.max", "536870912\n")]);
        assert_eq!(limit, Some(512 * MIB));
        assert_eq!(hash_concurrency(32, limit), 13);
        assert!(13 * u64::from(HASH_MEMORY_KIB) * 1024 <= 256 * MIB);
    }

    #[test]
    fn without_a_limit_the_bound_is_the_cores() {
        assert_eq!(
            limit("0::/\n", &[("/sys/fs/cgroup/memory.max", "max\n")]),
            None
        );
        assert_eq!(limit("", &[]), None);
        assert_eq!(hash_concurrency(8, None), 8);
    }

    #[test]
    fn a_generous_limit_leaves_the_cores_and_a_tiny_one_still_allows_one_hash() {
        assert_eq!(hash_concurrency(4, Some(16 * 1024 * MIB)), 4);
        assert_eq!(hash_concurrency(4, Some(20 * MIB)), 1);
        assert_eq!(hash_concurrency(0, None), 1);
    }

    #[test]
    fn cgroup_v2_takes_the_smallest_limit_of_the_process_group_and_its_ancestors() {
        let own = "0::/kubepods.slice/pod1.slice/cri-abc.scope\n";
        let files = [
            ("/sys/fs/cgroup/kubepods.slice/memory.max", "max"),
            (
                "/sys/fs/cgroup/kubepods.slice/pod1.slice/memory.max",
                "268435456",
            ),
            (
                "/sys/fs/cgroup/kubepods.slice/pod1.slice/cri-abc.scope/memory.max",
                "536870912",
            ),
        ];
        assert_eq!(limit(own, &files), Some(256 * MIB));
        assert_eq!(hash_concurrency(16, limit(own, &files)), 6);
    }

    #[test]
    fn cgroup_v1_reads_the_memory_controller_and_ignores_its_unlimited_value() {
        let own = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n";
        let limited = [(
            "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "1073741824\n",
        )];
        assert_eq!(limit(own, &limited), Some(1024 * MIB));
        assert_eq!(hash_concurrency(64, limit(own, &limited)), 26);
        let unlimited = [(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        )];
        assert_eq!(limit(own, &unlimited), None);
    }

    #[test]
    fn a_malformed_file_is_no_limit() {
        let files = [("/sys/fs/cgroup/memory.max", "lots")];
        assert_eq!(limit("0::/\n", &files), None);
        assert_eq!(limit("garbage", &[]), None);
    }
}
