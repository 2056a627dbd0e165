//! qload's URL parser on arbitrary text: no panic; an accepted URL has a host, a path starting
//! with '/', and a Host header that is plain printable ASCII (it goes into every request verbatim).
#![no_main]

use libfuzzer_sys::fuzz_target;
use queuelab_client::url::HttpUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = HttpUrl::parse(s) {
        assert!(!url.host.is_empty(), "{s:?} parsed with an empty host");
        assert!(url.path.starts_with('/'), "{s:?} parsed to path {:?}", url.path);
        let host = url.host_header();
        assert!(
            host.bytes().all(|b| (0x21..0x7f).contains(&b)),
            "{s:?} gives Host header {host:?}"
        );
        assert!(
            url.path.bytes().all(|b| (0x21..0x7f).contains(&b)),
            "{s:?} gives request target {:?}",
            url.path
        );
    }
});
