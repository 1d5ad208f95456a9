//! Settings set up on site: the setup page's form validated field by field (a bad one is named
//! and nothing is saved), the flash record read back exactly, and a damaged record refused (the
//! device then opens its setup page with the outputs OFF).

use pumppilot_controller::{
    Settings,
    setup::{DeviceSettings, RECORD_BYTES},
};

const FORM: &str = "ssid=Farm+AP&password=s3cret%21pass&server=192.168.1.10%3A8080&key=pp_dev_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdef&secret=pp_link_Zm9yIHRoZSB0ZXN0cyBvbmx5LCBuZXZlciBpbiB0aGUgZmllbGQ&relay=0";

#[test]
fn a_good_form_is_read_and_kept_exactly() {
    let settings = DeviceSettings::from_form(FORM.as_bytes()).expect("valid");
    assert_eq!(settings.wifi_ssid.as_str(), "Farm AP");
    assert_eq!(settings.wifi_password.as_str(), "s3cret!pass");
    assert_eq!(settings.server.as_str(), "192.168.1.10:8080");
    assert!(settings.device_key.as_str().starts_with("pp_dev_"));
    assert!(settings.link_secret.is_some());
    assert!(!settings.relay_active_high && settings.load_shedding_active_high && settings.ready_active_high);
    let mut record = [0u8; RECORD_BYTES];
    let len = settings.to_record(&mut record);
    assert_eq!(DeviceSettings::from_record(&record[..len]), Ok(settings));
    // An open network, no secret (a device that polls with its key alone), http:// and a final /.
    let open = DeviceSettings::from_form(
        b"ssid=pump&password=&server=http://pumps.example/&key=pp_dev_0123456789abcdef&ready=0",
    )
    .unwrap();
    assert_eq!((open.wifi_password.as_str(), open.server.as_str(), open.link_secret), ("", "pumps.example", None));
    let controller = open.controller_settings(Settings::DEFAULT);
    assert!(!controller.ready_active_high && controller.load_shedding_active_high);
    let len = open.to_record(&mut record);
    assert_eq!(DeviceSettings::from_record(&record[..len]), Ok(open));
}

#[test]
fn each_bad_setting_is_named() {
    let with = |field: &str, value: &str| {
        let form: Vec<String> = FORM
            .split('&')
            .map(
                |pair| {
                    if pair.starts_with(&format!("{field}=")) { format!("{field}={value}") } else { pair.to_owned() }
                },
            )
            .collect();
        DeviceSettings::from_form(form.join("&").as_bytes()).err().map(|e| e.field)
    };
    assert_eq!(with("ssid", ""), Some("ssid"));
    assert_eq!(with("ssid", &"x".repeat(33)), Some("ssid"));
    assert_eq!(with("password", "short"), Some("password"));
    assert_eq!(with("password", &"p".repeat(64)), Some("password"));
    assert_eq!(with("server", "https://pumps.example"), Some("server"));
    assert_eq!(with("server", "pumps.example:0"), Some("server"));
    assert_eq!(with("server", "pumps.example:99999"), Some("server"));
    assert_eq!(with("server", "pumps example"), Some("server"));
    assert_eq!(with("server", ""), Some("server"));
    assert_eq!(with("key", "not-a-key"), Some("key"));
    assert_eq!(with("secret", "pp_dev_wrong"), Some("secret"));
    assert_eq!(with("relay", "yes"), Some("relay"));
    assert_eq!(with("ssid", "bad%2"), Some("form"));
    let missing = DeviceSettings::from_form(b"ssid=a&server=h").unwrap_err();
    assert_eq!((missing.field, missing.problem), ("key", "is required"));
    assert_eq!(DeviceSettings::from_form(format!("{FORM}&colour=red").as_bytes()).unwrap_err().field, "form");
}

#[test]
fn a_damaged_record_means_setup_mode() {
    let settings = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let mut record = [0u8; RECORD_BYTES];
    let len = settings.to_record(&mut record);
    let refused = |bytes: &[u8]| DeviceSettings::from_record(bytes).map_err(|e| e.field);
    assert_eq!(refused(&[0xFF; 64]), Err("record"), "erased flash");
    assert_eq!(refused(&record[..len - 1]), Err("record"), "a cut write");
    for at in [0, 5, 6, len / 2, len - 1] {
        let mut flipped = record;
        flipped[at] ^= 0x04;
        assert_eq!(refused(&flipped[..len]), Err("record"), "a bit flipped at {at}");
    }
    assert_eq!(refused(&[]), Err("record"));
}
