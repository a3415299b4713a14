//! Fuzz the pure recipe functions: any text, either file kind. They must not panic; when
//! `patch_text` accepts a text, patching again changes nothing and reverting gives the input
//! back (unless the input already carried patch-uwsgi markers).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use patch_uwsgi::{patch_text, revert_text, FileKind};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = if selector & 1 == 0 {
        FileKind::UwsgiConfig
    } else {
        FileKind::PythonPlugin
    };
    let path = Path::new(kind.rel_path());
    let _ = revert_text(text, path);
    if let Ok(once) = patch_text(kind, text, path) {
        let twice = patch_text(kind, &once.text, path).expect("patched text is accepted");
        assert_eq!(twice.text, once.text, "apply twice != apply once");
        let back = revert_text(&once.text, path).expect("patched text reverts");
        if !text.contains("patch-uwsgi:") {
            assert_eq!(back, text, "revert after apply is not the identity");
        }
    }
});
