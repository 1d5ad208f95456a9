//! Links with esp-hal's linker scripts (`linkall.x` must come last) and rebuilds when a
//! provisioning variable changes, since those are baked into the image.

fn main() {
    for var in [
        "PUMPPILOT_WIFI_SSID",
        "PUMPPILOT_WIFI_PASSWORD",
        "PUMPPILOT_SERVER",
        "PUMPPILOT_DEVICE_KEY",
        "PUMPPILOT_LINK_SECRET",
        "PUMPPILOT_DEVICE_ID",
        "PUMPPILOT_TRANSPORT",
        "PUMPPILOT_MQTT_BROKER",
        "PUMPPILOT_FIRMWARE_PUBLIC_KEY",
        "PUMPPILOT_LOAD_SHEDDING_ACTIVE_HIGH",
        "PUMPPILOT_READY_ACTIVE_HIGH",
        "PUMPPILOT_RELAY_ACTIVE_HIGH",
        "PUMPPILOT_OPTO_ACTIVE_HIGH",
        "PUMPPILOT_DEBOUNCE_MS",
        "PUMPPILOT_FEEDBACK",
        "PUMPPILOT_FEEDBACK_ACTIVE_HIGH",
        "PUMPPILOT_FEEDBACK_CONFIRM_MS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rustc-link-arg=-Tlinkall.x");
}
