//! Settings set up on site: the setup page's form validated field by field (a bad one is named
//! and nothing is saved), the flash record read back exactly, and a damaged record refused (the
//! device then opens its setup page with the outputs OFF).

use pumppilot_controller::{
    Settings,
    setup::{DeviceSettings, RECORD_BYTES},
};

const FORM: &str = "ssid=Farm+AP&password=s3cret%21pass&server=192.168.1.10%3A8080&key=pp_dev_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdef&secret=pp_link_Zm9yIHRoZSB0ZXN0cyBvbmx5LCBuZXZlciBpbiB0aGUgZmllbGQ&relay=0&shedding=1&ready=1";

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
        b"ssid=pump&password=&server=http://pumps.example/&key=pp_dev_0123456789abcdef&relay=1&shedding=1&ready=0",
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
    // No level is assumed on the page: a board wired the other way would run its motor when OFF.
    for level in ["relay", "shedding", "ready"] {
        let form: Vec<&str> = FORM.split('&').filter(|pair| !pair.starts_with(&format!("{level}="))).collect();
        let refused = DeviceSettings::from_form(form.join("&").as_bytes()).unwrap_err();
        assert_eq!(refused.field, level, "{}", refused.problem);
        assert!(
            pumppilot_controller::setup::PAGE
                .contains(&format!(r#"name="{level}" required><option value="" selected disabled>"#))
        );
    }
}

/// `form` with `field`'s value replaced by `value`.
fn with_field(form: &str, field: &str, value: &str) -> String {
    let prefix = format!("{field}=");
    let pairs: Vec<String> = form
        .split('&')
        .map(|pair| if pair.starts_with(&prefix) { format!("{prefix}{value}") } else { pair.to_owned() })
        .collect();
    pairs.join("&")
}

/// The `<select …>…</select>` of `level` on a rendered setup page.
fn level_select<'p>(page: &'p str, level: &str) -> &'p str {
    let start = page.find(&format!(r#"<select id="{level}" name="{level}""#)).expect("the level's select");
    let end = start + page[start..].find("</select>").expect("its end");
    &page[start..end]
}

#[test]
fn a_board_with_stored_settings_shows_its_levels_chosen() {
    use pumppilot_controller::setup::{Levels, PAGE, page};
    // No record (a new board, a damaged record, values only built in): the blank page, each
    // level to be chosen, with its warning.
    let blank = page(None);
    assert!(blank.to_string() == PAGE, "the blank page is PAGE itself");
    assert_eq!(blank.byte_len(), PAGE.len());
    assert!(PAGE.contains("a wrong relay level runs the motor"));
    // A record: its levels are chosen, every combination, and nothing else of it is on the page.
    for bits in 0..8u8 {
        let (relay, shedding, ready) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
        let flag = |high: bool| if high { "1" } else { "0" };
        let form = with_field(FORM, "relay", flag(relay));
        let form = with_field(&form, "shedding", flag(shedding));
        let form = with_field(&form, "ready", flag(ready));
        let stored = DeviceSettings::from_form(form.as_bytes()).unwrap();
        assert_eq!(
            stored.levels(),
            Levels { relay_active_high: relay, load_shedding_active_high: shedding, ready_active_high: ready }
        );
        let shown = page(Some(stored.levels()));
        let html = shown.to_string();
        assert_eq!(shown.byte_len(), html.len(), "the Content-Length is the page's");
        assert_eq!(html.len(), PAGE.len(), "one `selected` moved in each of the three selects");
        let mut posted = FORM.to_owned();
        for (level, high) in [("relay", relay), ("shedding", shedding), ("ready", ready)] {
            let select = level_select(&html, level);
            assert!(select.contains(r#" required><option value="" disabled>"#), "{level}: placeholder not chosen");
            assert_eq!(select.matches("selected").count(), 1, "{level}: {select}");
            assert!(select.contains(&format!(r#"<option value="{}" selected>"#, flag(high))), "{level}: {select}");
            // What a browser posts with the choice left as shown.
            let value = if select.contains(r#"<option value="1" selected>"#) { "1" } else { "0" };
            posted = with_field(&posted, level, value);
        }
        assert_eq!(DeviceSettings::from_form(posted.as_bytes()).unwrap().levels(), stored.levels(), "{bits}");
        // The rest of the page is the blank one; the secrets never come back to it.
        assert_eq!(html.replace(" selected", ""), PAGE.replace(" selected", ""));
        let link_secret = core::str::from_utf8(stored.link_secret.as_ref().expect("FORM has one").as_bytes()).unwrap();
        for secret in [stored.wifi_password.as_str(), stored.device_key.as_str(), link_secret, "s3cret"] {
            assert!(!html.contains(secret), "{secret} on the page");
        }
    }
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

#[test]
fn the_device_id_transport_and_broker_are_read_and_kept() {
    use pumppilot_controller::setup::Transport;
    let http = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    assert_eq!((http.transport, http.device_id.as_str(), http.broker.as_str()), (Transport::Http, "", ""));
    assert_eq!(http.server_address(), ("192.168.1.10", 8080));
    assert_eq!(http.broker_address(), ("192.168.1.10", 1883), "no broker: the server's host at 1883");

    // FORM has a link secret: over MQTT the device signs its reports and checks the commands.
    let signed = DeviceSettings::from_form(format!("{FORM}&id=dev_7f3a-01&transport=mqtt").as_bytes()).unwrap();
    assert_eq!((signed.transport, signed.link_secret.is_some()), (Transport::Mqtt, true));
    let mut record = [0u8; RECORD_BYTES];
    let len = signed.to_record(&mut record);
    assert_eq!(DeviceSettings::from_record(&record[..len]), Ok(signed));
    let unsigned = FORM.replace("&secret=pp_link_Zm9yIHRoZSB0ZXN0cyBvbmx5LCBuZXZlciBpbiB0aGUgZmllbGQ", "");
    let mqtt = DeviceSettings::from_form(format!("{unsigned}&id=dev_7f3a-01&transport=mqtt").as_bytes()).unwrap();
    assert_eq!((mqtt.transport, mqtt.device_id.as_str()), (Transport::Mqtt, "dev_7f3a-01"));
    assert_eq!(mqtt.broker_address(), ("192.168.1.10", 1883));
    let mut record = [0u8; RECORD_BYTES];
    let len = mqtt.to_record(&mut record);
    assert_eq!(DeviceSettings::from_record(&record[..len]), Ok(mqtt));

    let broker =
        DeviceSettings::from_form(format!("{unsigned}&id=d1&transport=mqtt&broker=mqtt.farm.example:8883").as_bytes())
            .unwrap();
    assert_eq!(broker.broker_address(), ("mqtt.farm.example", 8883));
    let len = broker.to_record(&mut record);
    assert_eq!(DeviceSettings::from_record(&record[..len]), Ok(broker));
    let named = DeviceSettings::from_form(format!("{FORM}&broker=mqtt.farm.example").as_bytes()).unwrap();
    assert_eq!(named.broker_address(), ("mqtt.farm.example", 1883));

    let refused = |extra: &str| DeviceSettings::from_form(format!("{FORM}{extra}").as_bytes()).unwrap_err();
    let no_id = DeviceSettings::from_form(format!("{unsigned}&transport=mqtt").as_bytes()).unwrap_err();
    assert_eq!(no_id.field, "id", "MQTT signs in with the device id");
    assert!(no_id.problem.contains("MQTT"));
    assert_eq!(refused("&transport=coap").field, "transport");
    assert_eq!(refused("&id=has%20space").field, "id");
    assert_eq!(refused(&format!("&id={}", "d".repeat(65))).field, "id");
    assert_eq!(refused("&broker=https://mqtt.example").field, "broker");
    assert_eq!(refused("&broker=mqtt.example:0").field, "broker");
}

/// The `name="…"` attributes of the setup page's inputs and selects.
fn page_fields() -> Vec<String> {
    pumppilot_controller::setup::PAGE
        .split(" name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| *name != "viewport")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_setup_page_posts_exactly_the_fields_the_form_reader_takes() {
    let mut fields = page_fields();
    fields.sort();
    let mut known =
        ["broker", "id", "key", "password", "ready", "relay", "secret", "server", "shedding", "ssid", "transport"];
    known.sort();
    assert_eq!(fields, known);
    // What the page sends with a value typed or chosen in every field is read.
    let value = |name: &str| match name {
        "ssid" => "Farm AP",
        "password" => "s3cret!pass",
        "server" => "192.168.1.10:8080",
        "id" => "dev_1",
        "key" => "pp_dev_0123456789abcdef",
        "secret" => "",
        "transport" => "mqtt",
        "broker" => "",
        _ => "0",
    };
    let form: Vec<String> =
        fields.iter().map(|name| format!("{name}={}", value(name).replace(' ', "+").replace('!', "%21"))).collect();
    let settings = DeviceSettings::from_form(form.join("&").as_bytes()).expect("the page's form is read");
    assert!(!settings.relay_active_high && !settings.ready_active_high && !settings.load_shedding_active_high);
    // The page offers exactly the values the reader takes for its choices.
    for choice in ["value=\"http\"", "value=\"mqtt\"", "value=\"1\"", "value=\"0\""] {
        assert!(pumppilot_controller::setup::PAGE.contains(choice), "{choice}");
    }
    // The QR code's text (the dashboard's `server=…&key=…&secret=…`) fills the page's fields.
    assert!(pumppilot_controller::setup::PAGE.contains("new URLSearchParams(this.value.trim())"));
}

#[test]
fn a_refused_form_is_answered_with_a_json_error_naming_the_field() {
    let error = DeviceSettings::from_form(b"ssid=&server=h&key=pp_dev_0123456789abcdef").unwrap_err();
    let mut json = String::new();
    error.write_json(&mut json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(value["error"]["code"], "BAD_SETTING");
    assert_eq!(value["error"]["field"], "ssid");
    assert_eq!(value["error"]["message"], "ssid must be 1 to 32 bytes");
}

#[test]
fn a_long_press_of_five_seconds_opens_setup_mode_once() {
    use pumppilot_controller::{Millis, setup::SetupButton};
    let mut button = SetupButton::new();
    // Held from power-up (or stuck): never counts until it has been released once.
    for at in (0..=20_000).step_by(50) {
        assert!(!button.sample(Millis(at), true), "a button held since boot at {at}");
    }
    assert!(!button.sample(Millis(20_050), false));
    // A press of 4.95 s, released, then one of 5 s: only the second counts.
    for at in (21_000..=25_950).step_by(50) {
        assert!(!button.sample(Millis(at), true));
    }
    assert!(!button.sample(Millis(26_000), false));
    let fired: Vec<u64> = (30_000..=40_000).step_by(50).filter(|&at| button.sample(Millis(at), true)).collect();
    assert_eq!(fired, vec![35_000], "once, at 5 s, however long it is held");
    // A clock that goes back starts the count over.
    let mut button = SetupButton::new();
    button.sample(Millis(0), false);
    assert!(!button.sample(Millis(10_000), true));
    assert!(!button.sample(Millis(9_000), true));
    assert!(!button.sample(Millis(13_999), true));
    assert!(button.sample(Millis(14_000), true));
}

/// Setup mode: the firmware runs the same control loop without a poll task, so no command ever
/// arrives and the relay stays OFF, whatever the inputs say and however long it lasts: while
/// settings wait for the button, when they are discarded, and when a press takes them.
#[test]
fn without_a_command_the_relay_stays_off_through_setup_mode() {
    use pumppilot_controller::{
        Controller, Millis,
        setup::{Confirmed, PendingSave},
    };
    let settings = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let mut device = Controller::new(settings.controller_settings(Settings::DEFAULT));
    let mut pending = PendingSave::new();
    let grid_up = !settings.load_shedding_active_high;
    let ready = settings.ready_active_high;
    let (mut discarded, mut saved) = (0, 0);
    for step in 0..(30 * 60 * 20) {
        let at = Millis(step * 50);
        // A form every 90 s, nobody at the button.
        if at.0.is_multiple_of(90_000) {
            pending.send(at, settings).expect("the one before was discarded");
        }
        match pending.sample(at, false) {
            Some(Confirmed::Discarded) => discarded += 1,
            Some(Confirmed::Save(_)) => saved += 1,
            None => {}
        }
        device.sense(at, grid_up, ready);
        assert!(!device.drive(at).is_on(), "relay ON at {} ms of setup mode", at.0);
    }
    assert_eq!((discarded, saved), (20, 0), "half an hour of forms nobody pressed for");
    // Then one somebody presses the button for.
    pending.send(Millis(30 * 60 * 1_000), settings).unwrap();
    for step in 0..40 {
        let at = Millis(30 * 60 * 1_000 + step * 50);
        let pressed = step >= 10;
        if let Some(Confirmed::Save(_)) = pending.sample(at, pressed) {
            saved += 1;
        }
        device.sense(at, grid_up, ready);
        assert!(!device.drive(at).is_on(), "relay ON at {} ms, the button pressed", at.0);
    }
    assert_eq!(saved, 1, "the last form is saved by the press");
    assert!(device.settled(Millis(30 * 60 * 1_000)), "the inputs were read all along");
}

#[test]
fn build_time_values_are_checked_like_the_form() {
    let key = "pp_dev_0123456789abcdef";
    let fields = |ssid: &'static str, password: &'static str| {
        DeviceSettings::from_fields([
            ("ssid", ssid.as_bytes()),
            ("password", password.as_bytes()),
            ("server", b"http://192.168.1.10:8080/".as_slice()),
            ("key", key.as_bytes()),
            ("secret", b"".as_slice()),
            ("relay", b"0".as_slice()),
        ])
    };
    let form = DeviceSettings::from_form(
        format!(
            "ssid=Farm+AP&password=s3cret%21pass&server=http%3A%2F%2F192.168.1.10%3A8080%2F&key={key}&secret=&relay=0&shedding=1&ready=1"
        )
        .as_bytes(),
    );
    assert_eq!(fields("Farm AP", "s3cret!pass"), form);
    assert!(form.is_ok());
    // Unset build variables are empty: the image then has no usable settings of its own.
    assert_eq!(DeviceSettings::from_fields([("ssid", b"".as_slice())]).unwrap_err().field, "ssid");
    let long = "x".repeat(300);
    let long: &'static str = Box::leak(long.into_boxed_str());
    assert_eq!(fields(long, "").unwrap_err().field, "ssid", "far too long is refused, not cut");
    assert_eq!(fields("Farm AP", long).unwrap_err().field, "password");
    let mut form = FORM.to_owned();
    form.push_str(&format!("&id={}", "a".repeat(200)));
    assert_eq!(DeviceSettings::from_form(form.as_bytes()).unwrap_err().field, "form", "too long to decode");
}

/// Samples `button` every tick (50 ms) from `from` up to but not including `to`, the button held
/// down while `pressed(at)`; the outcomes, with the moment each came.
fn sample_button(
    pending: &mut pumppilot_controller::setup::PendingSave,
    from: u64,
    to: u64,
    pressed: impl Fn(u64) -> bool,
) -> Vec<(u64, pumppilot_controller::setup::Confirmed)> {
    use pumppilot_controller::Millis;
    (from..to)
        .step_by(50)
        .filter_map(|at| pending.sample(Millis(at), pressed(at)).map(|outcome| (at, outcome)))
        .collect()
}

#[test]
fn settings_sent_from_the_page_are_saved_only_by_a_press_of_the_button_in_time() {
    use pumppilot_controller::{
        Millis,
        setup::{Confirmed, PRESS_WITHIN_MS, PendingSave, SendRefused, Sent},
        status,
    };
    let settings = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let mut pending = PendingSave::new();
    // Nothing waits: the button does nothing, the LED shows setup mode.
    assert!(sample_button(&mut pending, 0, 10_000, |at| at % 1_000 < 500).is_empty());
    assert_eq!((pending.waiting(Millis(10_000)), pending.blink(Millis(10_000))), (false, status::SETUP));

    assert_eq!(pending.send(Millis(10_000), settings), Ok(Sent { press_within_ms: PRESS_WITHIN_MS }));
    assert_eq!(PRESS_WITHIN_MS, 60_000);
    assert!(pending.waiting(Millis(10_000)) && pending.waiting(Millis(69_999)));
    assert_eq!(pending.blink(Millis(30_000)), status::PRESS_TO_SAVE, "the LED blinks fast while it waits");
    // Released, and one stray sample pressed between releases: no press.
    assert!(sample_button(&mut pending, 10_000, 40_000, |at| at == 20_000).is_empty());
    // A press: held over two samples 50 ms apart.
    let saved = sample_button(&mut pending, 40_000, 41_000, |at| at >= 40_500);
    assert_eq!(saved, vec![(40_550, Confirmed::Save(settings))], "saved once, the settings sent");
    assert!(!pending.waiting(Millis(40_550)));
    assert_eq!(pending.blink(Millis(40_550)), status::SETUP);
    // Saving and restarting: nothing more is taken, the button does nothing more.
    assert_eq!(pending.send(Millis(41_000), settings), Err(SendRefused::Pressed));
    assert!(sample_button(&mut pending, 41_000, 200_000, |at| at % 1_000 < 500).is_empty());

    // The last moment counts: a press completed 1 ms before the deadline saves...
    let mut pending = PendingSave::new();
    pending.send(Millis(10_000), settings).unwrap();
    assert!(pending.sample(Millis(69_900), false).is_none());
    assert!(pending.sample(Millis(69_949), true).is_none());
    assert_eq!(pending.sample(Millis(69_999), true), Some(Confirmed::Save(settings)));
    // ...one completed at the deadline does not.
    let mut pending = PendingSave::new();
    pending.send(Millis(10_000), settings).unwrap();
    assert!(pending.sample(Millis(69_900), false).is_none());
    assert!(pending.sample(Millis(69_950), true).is_none());
    assert_eq!(pending.sample(Millis(70_000), true), Some(Confirmed::Discarded));
}

#[test]
fn nobody_pressing_in_time_discards_the_settings() {
    use pumppilot_controller::{
        Millis,
        setup::{Confirmed, PendingSave, QUIET_MS, SendRefused},
        status,
    };
    let settings = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let mut pending = PendingSave::new();
    pending.send(Millis(5_000), settings).unwrap();
    let outcomes = sample_button(&mut pending, 5_000, 300_000, |at| at >= 64_980);
    assert_eq!(outcomes, vec![(65_000, Confirmed::Discarded)], "discarded at 60 s; the late press saves nothing");
    assert!(!pending.waiting(Millis(65_000)));
    assert_eq!(pending.blink(Millis(65_000)), status::SETUP, "the LED goes back to setup mode");
    // Waiting ends at the deadline even before the next sample; a new form is taken once the quiet
    // time after it has passed, not before.
    let mut pending = PendingSave::new();
    pending.send(Millis(0), settings).unwrap();
    assert!(!pending.waiting(Millis(60_000)));
    assert_eq!(pending.send(Millis(60_000), settings), Err(SendRefused::JustDiscarded { ms_left: QUIET_MS }));
    assert_eq!(pending.send(Millis(69_999), settings), Err(SendRefused::JustDiscarded { ms_left: 1 }));
    assert!(pending.send(Millis(70_000), settings).is_ok());
    assert!(pending.waiting(Millis(129_999)));
}

#[test]
fn a_press_counts_only_when_it_starts_after_the_settings_were_sent() {
    use pumppilot_controller::{
        Millis,
        setup::{Confirmed, PendingSave},
    };
    let settings = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    // A button held down from before the sending (or stuck) saves nothing, however long.
    let mut pending = PendingSave::new();
    pending.send(Millis(1_000), settings).unwrap();
    assert!(sample_button(&mut pending, 0, 50_000, |_| true).is_empty());
    // Released, then pressed again: that press counts.
    let saved = sample_button(&mut pending, 50_000, 51_000, |at| at != 50_000);
    assert_eq!(saved, vec![(50_100, Confirmed::Save(settings))]);
    // Samples taken before the sending are no evidence of a press after it.
    let mut pending = PendingSave::new();
    pending.send(Millis(10_000), settings).unwrap();
    assert!(pending.sample(Millis(9_800), false).is_none());
    assert!(pending.sample(Millis(9_900), true).is_none());
    assert!(pending.sample(Millis(9_950), true).is_none());
    assert!(pending.sample(Millis(10_000), true).is_none(), "not released since the sending");
    assert!(pending.sample(Millis(10_050), false).is_none());
    // A clock that goes back during a press starts the press over.
    assert!(pending.sample(Millis(10_100), true).is_none());
    assert!(pending.sample(Millis(10_060), true).is_none());
    assert!(pending.sample(Millis(10_100), true).is_none());
    assert_eq!(pending.sample(Millis(10_110), true), Some(Confirmed::Save(settings)));
}

#[test]
fn a_second_form_while_one_waits_is_refused_and_never_takes_its_place() {
    use pumppilot_controller::{
        Millis,
        setup::{Confirmed, PendingSave, SendRefused},
    };
    let technician = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let stranger =
        DeviceSettings::from_form(with_field(&with_field(FORM, "relay", "1"), "server", "evil.example").as_bytes())
            .unwrap();
    let mut pending = PendingSave::new();
    pending.send(Millis(0), technician).unwrap();
    assert!(sample_button(&mut pending, 0, 20_000, |_| false).is_empty());
    let refused = pending.send(Millis(20_000), stranger).unwrap_err();
    assert_eq!(refused, SendRefused::OtherWaiting { ms_left: 40_000 });
    assert_eq!(pending.send(Millis(59_001), stranger), Err(SendRefused::OtherWaiting { ms_left: 999 }));
    // The press saves the settings its sender was told to confirm, not the stranger's.
    let saved = sample_button(&mut pending, 20_000, 30_000, |at| at >= 25_000);
    assert_eq!(saved, vec![(25_050, Confirmed::Save(technician))]);

    // The answers are JSON the page reads: the time left, in whole seconds rounded up.
    let json = |refused: SendRefused| {
        let mut out = String::new();
        refused.write_json(&mut out).unwrap();
        serde_json::from_str::<serde_json::Value>(&out).expect("valid JSON")
    };
    let waiting = json(SendRefused::OtherWaiting { ms_left: 40_001 });
    assert_eq!(waiting["error"]["code"], "OTHER_WAITING");
    assert_eq!(waiting["error"]["field"], "form");
    assert_eq!(waiting["error"]["retryInMs"], 40_001);
    assert!(waiting["error"]["message"].as_str().unwrap().ends_with("send again in 41 s"));
    assert!(waiting["error"]["message"].as_str().unwrap().contains("do not press"));
    assert_eq!(json(SendRefused::Pressed)["error"]["code"], "PRESSED");
}

#[test]
fn the_setup_page_tells_to_press_the_button_and_reads_every_answer() {
    use pumppilot_controller::setup::{PAGE, PRESS_WITHIN_MS, SendRefused, Sent};
    let mut sent = String::new();
    Sent { press_within_ms: PRESS_WITHIN_MS }.write_json(&mut sent).unwrap();
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["pressWithinMs"], 60_000);
    assert!(PAGE.contains("a.pressWithinMs"), "the page reads the answer to a form taken");
    // Its own words give the same time, in English and Bangla.
    let seconds = PRESS_WITHIN_MS / 1_000;
    assert!(PAGE.contains(&format!("press the button on the board (BOOT) within {seconds} s")));
    assert!(PAGE.contains("৬০ সেকেন্ডের মধ্যে বোর্ডের বোতামটি (BOOT) চাপুন"));
    assert!(!PAGE.contains("a.saved"), "nothing is saved when the form is answered");
    // Each refusal has its Bangla sentence on the page.
    for refused in [
        SendRefused::OtherWaiting { ms_left: 1 },
        SendRefused::JustDiscarded { ms_left: 1 },
        SendRefused::Pressed,
        SendRefused::Closing,
    ] {
        let mut json = String::new();
        refused.write_json(&mut json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let code = value["error"]["code"].as_str().unwrap();
        assert!(PAGE.contains(&format!("{code}:function")), "{code}");
    }
}

/// A stranger in WiFi range whose script sends inverted settings every 100 ms, next to the
/// technician's phone: `send` as the board's web server would, every 100 ms.
fn stranger() -> DeviceSettings {
    DeviceSettings::from_form(with_field(&with_field(FORM, "relay", "1"), "server", "evil.example").as_bytes()).unwrap()
}

/// What the board's `/pending` answers at `at`.
fn pending_state(pending: &pumppilot_controller::setup::PendingSave, at: u64) -> String {
    let mut out = String::new();
    pending.write_json(pumppilot_controller::Millis(at), &mut out).unwrap();
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    value["state"].as_str().expect("a state").to_owned()
}

/// The technician sends at 0 s and reaches the board late, while a stranger's script sends its
/// own settings every 100 ms. Runs the board from `0` to `to` ms, sampling the button every tick
/// (50 ms) held while `hand(at)`; returns what a press saved, and when.
fn late_press(
    to: u64,
    hand: impl Fn(u64) -> bool,
) -> (pumppilot_controller::setup::PendingSave, Option<(u64, DeviceSettings)>) {
    use pumppilot_controller::{
        Millis,
        setup::{Confirmed, PendingSave},
    };
    let technician = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let mut pending = PendingSave::new();
    pending.send(Millis(0), technician).unwrap();
    for at in (0..to).step_by(50) {
        if at.is_multiple_of(100) {
            let _ = pending.send(Millis(at), stranger());
        }
        if let Some(Confirmed::Save(settings)) = pending.sample(Millis(at), hand(at)) {
            return (pending, Some((at, settings)));
        }
    }
    (pending, None)
}

#[test]
fn a_press_just_after_the_time_ran_out_saves_nothing_not_a_strangers_form() {
    use pumppilot_controller::{
        Millis,
        setup::{PRESS_WITHIN_MS, QUIET_MS, SendRefused},
        status,
    };
    assert_eq!(QUIET_MS, 10_000);
    // One press at 60.2 s, 200 ms after the technician's time ran out: nothing is saved.
    let (pending, saved) = late_press(PRESS_WITHIN_MS + QUIET_MS, |at| (60_200..60_500).contains(&at));
    assert_eq!(saved, None, "a press just after the deadline saved a form");
    // Meanwhile the stranger's forms are refused (until 10 s after the last sample of the press,
    // at 60.45 s), the LED shows setup mode's own pattern and the page, asking, hears that the
    // settings were discarded.
    let mut quiet = pending;
    assert_eq!(quiet.send(Millis(65_000), stranger()), Err(SendRefused::JustDiscarded { ms_left: 5_450 }));
    assert!(!quiet.waiting(Millis(65_000)));
    assert_eq!(quiet.blink(Millis(65_000)), status::SETUP);
    assert_eq!(pending_state(&quiet, 65_000), "discarded");

    // Any press within the quiet time saves nothing, wherever in it and however held.
    for start in (PRESS_WITHIN_MS..PRESS_WITHIN_MS + QUIET_MS).step_by(250) {
        let (_, saved) = late_press(start + 30_000, |at| (start..start + 500).contains(&at));
        assert_eq!(saved, None, "a press from {start} ms saved a form");
    }
    // A technician who keeps pressing (nothing happens, so they press again) keeps the quiet time
    // going: three minutes of presses a second apart save nothing.
    let (pending, saved) = late_press(PRESS_WITHIN_MS + 180_000, |at| at >= 60_200 && at % 1_000 < 200);
    assert_eq!(saved, None, "repeated late presses saved a form");
    assert_eq!(pending_state(&pending, PRESS_WITHIN_MS + 180_000), "discarded");

    // What remains (docs/DEVICE.md): a technician who leaves the button alone for the whole quiet
    // time after the deadline and then presses, against their page and while the LED blinks fast
    // again for the stranger's form taken after the quiet time, saves the stranger's.
    let (_, saved) = late_press(PRESS_WITHIN_MS + 60_000, |at| at >= 80_000);
    let (at, settings) = saved.expect("the late press saves the stranger's settings");
    assert_eq!((at, settings), (80_050, stranger()));
}

#[test]
fn the_same_settings_sent_again_while_they_wait_are_told_to_press_with_the_time_left() {
    use pumppilot_controller::{
        Millis,
        setup::{Confirmed, PRESS_WITHIN_MS, PendingSave, SendRefused, Sent},
    };
    let technician = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let mut pending = PendingSave::new();
    assert_eq!(pending.send(Millis(1_000), technician), Ok(Sent { press_within_ms: PRESS_WITHIN_MS }));
    // A double tap, a browser sending the form again: the same answer, with the time left.
    assert_eq!(pending.send(Millis(1_300), technician), Ok(Sent { press_within_ms: 59_700 }));
    assert_eq!(pending.send(Millis(60_999), technician), Ok(Sent { press_within_ms: 1 }));
    // Only exactly the same settings: one field apart (the relay's level) is other settings.
    let inverted = DeviceSettings::from_form(with_field(FORM, "relay", "1").as_bytes()).unwrap();
    assert_eq!(pending.send(Millis(2_000), inverted), Err(SendRefused::OtherWaiting { ms_left: 59_000 }));
    // Sending again changes nothing: not the deadline...
    assert_eq!(sample_button(&mut pending, 1_000, 62_000, |_| false), vec![(61_000, Confirmed::Discarded)]);
    // ...nor a press under way (the button released after the first sending, held across the
    // second): the press counts, and saves the settings sent.
    let mut pending = PendingSave::new();
    pending.send(Millis(1_000), technician).unwrap();
    assert!(pending.sample(Millis(1_000), false).is_none());
    assert!(pending.sample(Millis(1_050), true).is_none());
    assert!(pending.send(Millis(1_060), technician).is_ok());
    assert_eq!(pending.sample(Millis(1_100), true), Some(Confirmed::Save(technician)));
    // After the press, the same settings are refused like any others: the board is restarting.
    assert_eq!(pending.send(Millis(1_200), technician), Err(SendRefused::Pressed));
}

#[test]
fn the_board_gives_up_on_setup_mode_only_when_nothing_waits_and_nothing_was_pressed() {
    use pumppilot_controller::{
        Millis,
        setup::{Confirmed, PRESS_WITHIN_MS, PendingSave, QUIET_MS, SendRefused},
        status,
    };
    let technician = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    const FIFTEEN_MINUTES: u64 = 15 * 60_000;
    // The firmware's save task: after 15 minutes it asks every second until it may give up;
    // meanwhile the control loop samples the button every 50 ms. The moment it gave up, if it did.
    let run = |pending: &mut PendingSave, to: u64, hand: &dyn Fn(u64) -> bool, forms: &dyn Fn(u64) -> bool| {
        for at in (0..to).step_by(50) {
            if forms(at) {
                let _ = pending.send(Millis(at), technician);
            }
            if let Some(Confirmed::Save(_)) = pending.sample(Millis(at), hand(at)) {
                return Err(at);
            }
            if at >= FIFTEEN_MINUTES && at.is_multiple_of(1_000) && pending.give_up(Millis(at)) {
                return Ok(at);
            }
        }
        panic!("neither gave up nor saved by {to} ms");
    };
    let nobody = |_: u64| false;
    // Nothing sent: it gives up at 15 minutes.
    assert_eq!(run(&mut PendingSave::new(), 2 * FIFTEEN_MINUTES, &nobody, &nobody), Ok(FIFTEEN_MINUTES));
    // A form sent in the last minute keeps its whole time: given up only once it is discarded...
    let sent = FIFTEEN_MINUTES - 20_000;
    let mut pending = PendingSave::new();
    assert_eq!(run(&mut pending, 2 * FIFTEEN_MINUTES, &nobody, &|at| at == sent), Ok(sent + PRESS_WITHIN_MS));
    // ...and pressed for at its end, it is saved, not dropped by the restart.
    let press = |at: u64| at >= sent + 59_000;
    assert_eq!(run(&mut PendingSave::new(), 2 * FIFTEEN_MINUTES, &press, &|at| at == sent), Err(sent + 59_050));
    // A press the same moment as the give-up: whichever the board sees first holds, the other
    // does nothing.
    let mut pending = PendingSave::new();
    pending.send(Millis(sent), technician).unwrap();
    assert!(pending.sample(Millis(sent + 50), false).is_none());
    assert!(pending.sample(Millis(sent + 100), true).is_none());
    assert_eq!(pending.sample(Millis(sent + 150), true), Some(Confirmed::Save(technician)));
    assert!(!pending.give_up(Millis(FIFTEEN_MINUTES)), "pressed: the board writes the settings");
    assert!(!pending.give_up(Millis(3 * FIFTEEN_MINUTES)), "never after a press");
    let mut pending = PendingSave::new();
    assert!(pending.give_up(Millis(FIFTEEN_MINUTES)));
    assert_eq!(pending.send(Millis(FIFTEEN_MINUTES), technician), Err(SendRefused::Closing));
    assert!(sample_button(&mut pending, FIFTEEN_MINUTES, FIFTEEN_MINUTES + 5_000, |at| at % 1_000 < 500).is_empty());
    assert_eq!(pending.blink(Millis(FIFTEEN_MINUTES)), status::SETUP);
    assert_eq!(pending_state(&pending, FIFTEEN_MINUTES), "closing");
    // A script that sends a form every 100 ms from the last second before the 15 minutes on
    // delays the give-up by one form's time, no more: it is given up in the quiet time after that
    // form is discarded, when no form is taken.
    let mut pending = PendingSave::new();
    let forms = |at: u64| at >= FIFTEEN_MINUTES - 1_000 && at.is_multiple_of(100);
    assert_eq!(run(&mut pending, 2 * FIFTEEN_MINUTES, &nobody, &forms), Ok(FIFTEEN_MINUTES - 1_000 + PRESS_WITHIN_MS));
    const { assert!(QUIET_MS > 1_000, "the give-up is asked each second: it lands in the quiet time") };
}

#[test]
fn the_setup_page_counts_the_time_down_and_says_when_it_is_too_late() {
    use pumppilot_controller::{
        Millis,
        setup::{PAGE, PENDING_PATH, PendingSave},
    };
    // The Send button is disabled while a form is on its way or waits, and enabled again when it
    // is answered with an error, when the board does not answer and when the time is up.
    assert!(PAGE.contains("b.disabled=true"));
    assert_eq!(PAGE.matches("b.disabled=false").count(), 4);
    // The count starts from the board's answer (the time left, also for a form sent again).
    assert!(PAGE.contains("count(performance.now()+a.pressWithinMs)"));
    // At zero the page asks the board, and says plainly what became of the settings.
    assert!(PAGE.contains(&format!(r#"fetch("{PENDING_PATH}""#)));
    assert!(PAGE.contains(r#"p.state==="pressed""#));
    assert!(PAGE.contains("Too late: nothing was saved. Do not press the button now. Send again."));
    assert!(PAGE.contains("সময় শেষ: কিছুই সংরক্ষণ হয়নি। এখন বোতাম চাপবেন না। আবার পাঠান।"));
    assert!(PAGE.contains("If not, nothing was saved: do not press the button"));
    // The board's answer is JSON the page reads, in each state.
    let technician = DeviceSettings::from_form(FORM.as_bytes()).unwrap();
    let mut pending = PendingSave::new();
    assert_eq!(pending_state(&pending, 0), "none");
    pending.send(Millis(0), technician).unwrap();
    assert_eq!(pending_state(&pending, 59_999), "waiting");
    assert_eq!(pending_state(&pending, 60_000), "discarded", "also before a sample saw the deadline");
    assert_eq!(pending_state(&pending, 70_000), "none");
    assert!(pending.sample(Millis(100), false).is_none());
    assert!(pending.sample(Millis(150), true).is_none());
    assert!(pending.sample(Millis(200), true).is_some());
    assert_eq!(pending_state(&pending, 60_000), "pressed");
}
