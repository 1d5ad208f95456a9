//! The wall clock, in the engine's units.

use pumppilot_engine::Timestamp;

/// Milliseconds since the Unix epoch, now.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(since_epoch.as_millis() as i64)
}

/// RFC 3339 UTC text for a timestamp, as every API time is written.
pub fn rfc3339(at: Timestamp) -> String {
    let nanos = i128::from(at.millis()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads an RFC 3339 time or a plain `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64));
    }
    let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(Timestamp(date.midnight().assume_utc().unix_timestamp() * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let at = Timestamp(1_764_230_400_123);
        assert_eq!(rfc3339(at), "2025-11-27T08:00:00.123Z");
        assert_eq!(parse_time(&rfc3339(at)), Some(at));
        assert_eq!(parse_time("2025-11-27"), Some(Timestamp(1_764_201_600_000)));
        assert_eq!(parse_time("yesterday"), None);
    }
}
