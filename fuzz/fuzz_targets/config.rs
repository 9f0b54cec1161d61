//! Config parsing: `Settings::from_toml` (TOML text, then `MCP_HUB_*` environment overrides,
//! then validation), what `mcp-hub serve --config` runs on a hub.toml.
//!
//! Input: TOML text, then optionally a NUL byte and `NAME=VALUE` lines as the environment.
//!
//! Beyond "no panic": settings that load are valid (`validate` passes again), and written
//! back as TOML they load (without the environment) to the same settings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_hub::config::Settings;

fuzz_target!(|data: &[u8]| {
    let (text, env) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(text), Ok(env)) = (std::str::from_utf8(text), std::str::from_utf8(env)) else {
        return;
    };
    let vars = env.lines().filter_map(|l| {
        let (k, v) = l.split_once('=')?;
        Some((k.to_string(), v.to_string()))
    });
    let Ok(settings) = Settings::from_toml("fuzz", text, vars) else {
        return;
    };
    if let Err(e) = settings.validate() {
        panic!("loaded settings do not validate: {e}");
    }
    let written = match toml::to_string(&settings) {
        Ok(t) => t,
        Err(e) => panic!("loaded settings do not serialize: {e}"),
    };
    let again = match Settings::from_toml("round trip", &written, std::iter::empty()) {
        Ok(s) => s,
        Err(e) => panic!("written settings do not load: {e}\n{written}"),
    };
    let rewritten = match toml::to_string(&again) {
        Ok(t) => t,
        Err(e) => panic!("reloaded settings do not serialize: {e}"),
    };
    assert_eq!(written, rewritten);
});
