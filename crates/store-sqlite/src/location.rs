//! Where a database lives, from the URL a user writes in the settings.

use std::path::PathBuf;

use pumppilot_store::StoreError;

/// A database in memory or in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// Gone when the store is dropped; for tests and trials.
    Memory,
    File(PathBuf),
}

impl Location {
    /// Reads `sqlite::memory:`, `sqlite://path`, `sqlite:path` or a bare file path.
    ///
    /// `sqlite:///var/lib/pumppilot.db` is the absolute path `/var/lib/pumppilot.db`;
    /// `sqlite://data/pumppilot.db` is relative to the working directory.
    pub(crate) fn parse(url: &str) -> Result<Location, StoreError> {
        let url = url.trim();
        let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"));
        if rest.is_none()
            && let Some((scheme, _)) = url.split_once("://")
        {
            return Err(StoreError::Unavailable(format!(
                "the SQLite store cannot open a {scheme}:// URL; use sqlite://PATH, sqlite::memory: or a file path"
            )));
        }
        match rest.unwrap_or(url) {
            ":memory:" => Ok(Location::Memory),
            "" => Err(StoreError::Unavailable(format!("the database URL {url:?} names no file"))),
            path => Ok(Location::File(PathBuf::from(path))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Location {
        Location::File(PathBuf::from(path))
    }

    #[test]
    fn reads_every_accepted_form() {
        assert_eq!(Location::parse("sqlite::memory:").unwrap(), Location::Memory);
        assert_eq!(Location::parse("sqlite://:memory:").unwrap(), Location::Memory);
        assert_eq!(Location::parse("sqlite:///var/lib/pp.db").unwrap(), file("/var/lib/pp.db"));
        assert_eq!(Location::parse("sqlite://data/pp.db").unwrap(), file("data/pp.db"));
        assert_eq!(Location::parse("sqlite:data/pp.db").unwrap(), file("data/pp.db"));
        assert_eq!(Location::parse("/tmp/pp.db").unwrap(), file("/tmp/pp.db"));
        assert_eq!(Location::parse("pp.db").unwrap(), file("pp.db"));
    }

    #[test]
    fn refuses_other_schemes_and_empty_paths() {
        assert!(Location::parse("mongodb://localhost:27017/pp").is_err());
        assert!(Location::parse("sqlite://").is_err());
        assert!(Location::parse("").is_err());
    }
}
