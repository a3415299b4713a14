//! The cache folder (`$XDG_CACHE_HOME/patch-uwsgi`): saved interpreter probes and `-no-pie`
//! answers, keyed by a stable hash of what they depend on. Every write is best effort: a cache
//! that cannot be written only costs the next run the work again.

use std::path::{Path, PathBuf};

/// The usual cache folder, from the values of `XDG_CACHE_HOME` and `HOME`:
/// `$XDG_CACHE_HOME/patch-uwsgi`, else `~/.cache/patch-uwsgi`, else `None`.
///
/// ```
/// use patch_uwsgi::cache_dir_from;
/// assert_eq!(cache_dir_from(Some("/c".as_ref()), Some("/h".as_ref())).unwrap(), std::path::Path::new("/c/patch-uwsgi"));
/// assert_eq!(cache_dir_from(Some("".as_ref()), Some("/h".as_ref())).unwrap(), std::path::Path::new("/h/.cache/patch-uwsgi"));
/// assert_eq!(cache_dir_from(None, None), None);
/// ```
pub fn cache_dir_from(
    xdg_cache_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    let base = xdg_cache_home
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("patch-uwsgi"))
}

/// 64-bit FNV-1a: a stable hash for cache file names (std's hasher may change between
/// releases).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Store `bytes` at `file` in the cache (folders made as needed), atomically; a failure is
/// ignored.
pub(crate) fn remember(file: &Path, bytes: &[u8]) {
    if let Some(parent) = file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = crate::files::write_atomic(file, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_values() {
        // Published FNV-1a 64 test vectors.
        for (input, hash) in [
            (&b""[..], 0xcbf2_9ce4_8422_2325_u64),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ] {
            assert_eq!(fnv1a(input), hash, "{input:?}");
        }
    }
}
