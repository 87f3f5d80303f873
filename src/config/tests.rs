use std::collections::HashMap;
use std::path::Path;

use super::*;

fn fixtures(kind: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

fn load_text(text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
    from_parts(parse_toml(text, "test.toml")?, env, &Overrides::default())
}

#[test]
fn the_shipped_default_config_parses_and_equals_the_built_in_defaults() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH))
            .unwrap();
    let env = HashMap::new();
    let shipped = load_text(&text, &env).unwrap();
    let builtin = load_text("", &env).unwrap();
    assert_eq!(format!("{shipped:?}"), format!("{builtin:?}"));
    assert_eq!(shipped.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(
        shipped.connections["main"].base_url.as_str(),
        DEFAULT_BASE_URL
    );
}

#[test]
fn every_valid_fixture_loads() {
    let env: HashMap<String, String> = [("SHOP2_KEY".to_owned(), "42-abc".to_owned())].into();
    for (name, text) in fixtures("valid") {
        let config = load_text(&text, &env).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(config.connections.contains_key("main"), "{name}");
    }
}

#[test]
fn every_invalid_fixture_is_refused_naming_the_key_and_a_fix() {
    for (name, text) in fixtures("invalid") {
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name} lacks `# expect:`"));
        let err = load_text(&text, &HashMap::new())
            .expect_err(&name)
            .to_string();
        assert!(
            err.contains(expect),
            "{name}: `{err}` does not contain `{expect}`"
        );
        assert!(err.contains("Fix:"), "{name}: `{err}` says no fix");
    }
}

#[test]
fn environment_beats_the_file_and_flags_beat_the_environment() {
    let text = "[server]\nlisten = \"127.0.0.1:1111\"\n[upstream]\nbase_url = \"https://a.example/api/call\"\n";
    let env = [
        ("DS24_PROXY_LISTEN", "127.0.0.1:2222"),
        ("DS24_BASE_URL", "https://b.example/api/call"),
    ];
    let config = load_text(text, &env).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:2222");
    assert_eq!(
        config.connections["main"].base_url.as_str(),
        "https://b.example/api/call"
    );
    let flags = Overrides {
        listen: Some("127.0.0.1:3333".into()),
        ..Overrides::default()
    };
    let config = from_parts(parse_toml(text, "t").unwrap(), &env, &flags).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:3333");
}

#[test]
fn main_takes_its_key_from_the_environment_or_a_file_but_not_both() {
    let config = load_text("", &[("DS24_API_KEY", "123-abc")]).unwrap();
    assert_eq!(config.connections["main"].credential.kind(), "env");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "123-abc\n").unwrap();
    let path = file.display().to_string();
    let config = load_text("", &[("DS24_API_KEY_FILE", path.as_str())]).unwrap();
    assert_eq!(config.connections["main"].credential.kind(), "file");

    let err = load_text(
        "",
        &[
            ("DS24_API_KEY", "123-abc"),
            ("DS24_API_KEY_FILE", path.as_str()),
        ],
    )
    .unwrap_err();
    assert!(err.key.contains("DS24_API_KEY_FILE"), "{err}");

    let config = load_text("", &[("HOME", "/home/x")]).unwrap();
    assert_eq!(config.connections["main"].credential.kind(), "none");
}

#[test]
fn a_config_error_never_repeats_the_key() {
    let err = load_text("", &[("DS24_API_KEY", "123-sec ret")])
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("sec ret") && !err.contains("123-sec"),
        "{err}"
    );
    assert!(err.contains("DS24_API_KEY"), "{err}");
}

#[test]
fn a_public_listen_address_is_allowed_once_a_token_is_configured() {
    let token = "0123456789abcdef0123456789abcdef";
    let config = load_text(
        "[server]\nlisten = \"0.0.0.0:7424\"\n",
        &[("DS24_PROXY_TOKEN", token)],
    )
    .unwrap();
    assert_eq!(config.tokens.len(), 1);
    assert!(
        !format!("{config:?}").contains(token),
        "token shown in Debug"
    );
    let err = load_text("", &[("DS24_PROXY_TOKEN", "short")]).unwrap_err();
    assert_eq!(err.key, "DS24_PROXY_TOKEN");
}

#[test]
fn a_toml_error_names_the_key_and_never_repeats_a_value() {
    let err = parse_toml(
        "[server]\ntokens = \"SuperSecretInboundToken1234\"\n",
        "x.toml",
    )
    .unwrap_err();
    assert_eq!(err.key, "server.tokens", "{err}");
    assert!(!err.to_string().contains("SuperSecret"), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

mod props {
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text as a config file never panics: it parses into a
        /// config or is refused with a message that names a key or the file
        /// and says how to fix it.
        #[test]
        fn arbitrary_config_text_is_parsed_or_refused_with_a_fix(text in "\\PC{0,200}") {
            match super::parse_toml(&text, "fuzz.toml") {
                Ok(raw) => {
                    let env = std::collections::HashMap::new();
                    if let Err(e) = super::from_parts(raw, &env, &super::Overrides::default()) {
                        prop_assert!(!e.key.is_empty() && !e.fix.is_empty());
                    }
                }
                Err(e) => prop_assert!(!e.key.is_empty() && !e.fix.is_empty()),
            }
        }

        /// Structured but random values in known keys are validated, never
        /// accepted blindly and never panicking.
        #[test]
        fn random_values_in_known_keys_are_validated(listen in "\\PC{0,30}", base in "\\PC{0,40}", timeout in 0u64..100_000) {
            let text = format!("[server]\nlisten = {listen:?}\n[upstream]\nbase_url = {base:?}\nrequest_timeout_secs = {timeout}\n");
            if let Ok(raw) = super::parse_toml(&text, "fuzz.toml") {
                let env = std::collections::HashMap::new();
                if let Ok(config) = super::from_parts(raw, &env, &super::Overrides::default()) {
                    prop_assert!(config.listen.ip().is_loopback());
                    prop_assert!(timeout > 0);
                    let url = &config.connections["main"].base_url;
                    prop_assert!(url.scheme() == "https" || url.host_str().is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]"));
                }
            }
        }
    }
}

#[test]
fn workers_default_to_one_per_core_and_take_a_number() {
    let env = HashMap::new();
    assert_eq!(load_text("", &env).unwrap().workers, 0, "0 = one per core");
    let config = load_text("[server]\nworkers = 3\n", &env).unwrap();
    assert_eq!(config.workers, 3);
    let err = load_text("[server]\nworkers = 257\n", &env).unwrap_err();
    assert!(err.to_string().contains("server.workers"), "{err}");
}

#[test]
fn the_data_dir_is_set_or_under_xdg_or_home_and_never_relative_to_the_working_directory() {
    let nothing = load_text("", &HashMap::new()).unwrap();
    let err = nothing.data_dir().unwrap_err().to_string();
    assert!(err.contains("set DS24_PROXY_DATA_DIR"), "{err}");
    assert!(!err.contains("chmod"), "{err}");

    let home = load_text("", &[("HOME", "/home/a")]).unwrap();
    assert_eq!(
        home.data_dir().unwrap(),
        Path::new("/home/a/.local/share/ds24-proxy")
    );
    let xdg = load_text("", &[("HOME", "/home/a"), ("XDG_DATA_HOME", "/x")]).unwrap();
    assert_eq!(xdg.data_dir().unwrap(), Path::new("/x/ds24-proxy"));
    let file = load_text("[store]\ndata_dir = \"/srv/ds24\"\n", &HashMap::new()).unwrap();
    assert_eq!(file.data_dir().unwrap(), Path::new("/srv/ds24"));
    let set = load_text("", &[("DS24_PROXY_DATA_DIR", "/var/lib/ds24-proxy")]).unwrap();
    assert_eq!(set.data_dir().unwrap(), Path::new("/var/lib/ds24-proxy"));
}
