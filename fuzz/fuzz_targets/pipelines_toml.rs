//! A pipelines.toml from any commit of a served repository. Checks that the
//! loader never panics, that every diagnostic renders and points inside the
//! file, and that a file that loads is stable (loading it twice agrees).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match cairn::config::parse(source, "pipelines.toml") {
        Ok(config) => {
            let again = cairn::config::parse(source, "pipelines.toml").unwrap();
            assert_eq!(config, again);
            for p in config.pipelines.values() {
                let names: Vec<_> = p.tasks.iter().map(|t| &t.name).collect();
                for t in p.tasks.iter() {
                    assert!(!t.command.is_empty(), "a task without a command loaded");
                    for need in &t.needs {
                        assert!(names.contains(&need), "{need} is not a task of {}", p.name);
                    }
                }
            }
        }
        Err(diagnostics) => {
            let text = diagnostics.to_string();
            assert!(text.starts_with("pipelines.toml"), "{text}");
        }
    }
});
