//! Every pump's link ([`PumpLink`]: what its record says of its device and grid) as the alerts
//! watch knows it, kept up to date from the change feed on a shared store.
//!
//! The watch looks at every pump every round, but a round that read every pump's record took the
//! store about half a second at 100,000 pumps, every 30 s, and the farmers' Starts that came
//! meanwhile waited for it. So the watching server reads every link once ([`LinkNews::ReadAll`]),
//! then hears of each change through the feed ([`Heard`]): a commit carries its state, so its
//! link is known without a read; a flushed poll moves a link's last poll. Only a pump whose record
//! changed in a way the feed did not tell (written whole: a new tenant, an import; or by a server
//! from before commits carried their state) is read again, with the others so named in one read.
//! A feed that may have missed changes (a reset) reads every link again.
//!
//! A store of one server has no feed: its watch reads every link each round, as it always did.

use std::collections::{HashMap, HashSet};

use pumppilot_engine::{AdminId, Tenant, Timestamp};
use pumppilot_store::{PumpLink, Store, StoreResult};

use crate::keys::Ids;

/// What the watch is to do with the links it knows before a round.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkNews {
    /// Read every link: the watch has not asked since it began watching, or the feed may have
    /// missed changes (or there is no feed).
    ReadAll,
    /// What the feed told since the watch last asked, pump by pump.
    Heard(HashMap<AdminId, Heard, Ids>),
}

impl LinkNews {
    /// Nothing heard yet.
    pub fn nothing() -> LinkNews {
        LinkNews::Heard(HashMap::default())
    }

    /// Notes a change to `admin`'s record, as the feed told it: the version a commit or a whole
    /// write set (`None` when it set none), the device's last poll when it moved, and the state a
    /// commit carried. Nothing that the link does not show (a presence alone) is news.
    pub fn hear(
        &mut self,
        admin: AdminId,
        version: Option<u64>,
        last_poll_at: Option<Timestamp>,
        state: Option<&Tenant>,
    ) {
        let LinkNews::Heard(heard) = self else { return };
        let news = match (version, state) {
            (Some(version), Some(state)) if state.version == version && state.admin_id == admin => {
                Heard::Link(with_poll(PumpLink::of(state), last_poll_at))
            }
            (Some(_), _) => Heard::Unknown,
            (None, _) => match last_poll_at {
                Some(at) => Heard::Polled(at),
                None => return,
            },
        };
        let both = heard.get(&admin).map_or(news, |earlier| news.after(*earlier));
        heard.insert(admin, both);
    }
}

/// What the feed told of one pump's record since the watch last asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Its link as a commit left it.
    Link(PumpLink),
    /// Only its device's last poll moved, to this moment at least.
    Polled(Timestamp),
    /// It changed in a way the feed did not tell: it is read.
    Unknown,
}

impl Heard {
    /// What this news and an `earlier` one of the same pump tell together.
    fn after(self, earlier: Heard) -> Heard {
        match (earlier, self) {
            (Heard::Unknown, _) | (_, Heard::Unknown) => Heard::Unknown,
            (Heard::Polled(a), Heard::Polled(b)) => Heard::Polled(a.max(b)),
            (Heard::Link(link), Heard::Polled(at)) | (Heard::Polled(at), Heard::Link(link)) => {
                Heard::Link(with_poll(link, Some(at)))
            }
            (Heard::Link(a), Heard::Link(b)) => Heard::Link(newer(a, b)),
        }
    }
}

/// `link` with its last poll moved on to `at`: a record keeps the latest poll it was told of
/// (the store writes it as a maximum), whichever write told it.
fn with_poll(mut link: PumpLink, at: Option<Timestamp>) -> PumpLink {
    link.last_poll_at = link.last_poll_at.max(at);
    link
}

/// The link of the later version of two of one pump, with the later of their last polls.
fn newer(a: PumpLink, b: PumpLink) -> PumpLink {
    let (old, new) = if b.version >= a.version { (a, b) } else { (b, a) };
    with_poll(new, old.last_poll_at)
}

/// Every pump's link as the watch knows it (nothing before its first round).
#[derive(Debug, Default)]
pub struct Links(Option<HashMap<AdminId, PumpLink, Ids>>);

impl Links {
    /// The link known of `admin`'s pump (`None` before the first round, or when not stored then).
    pub fn get(&self, admin: AdminId) -> Option<PumpLink> {
        self.0.as_ref()?.get(&admin).copied()
    }

    /// Brings the links up to date with `news`, reading from `store` every link (when told to,
    /// or when none is known yet) or those whose news the feed did not tell; returns them all.
    /// When a read fails, nothing is known any more: the next round reads every link.
    pub async fn update(&mut self, news: LinkNews, store: &dyn Store) -> StoreResult<&HashMap<AdminId, PumpLink, Ids>> {
        let known = match (news, self.0.take()) {
            (LinkNews::Heard(heard), Some(mut known)) => {
                let mut unread = HashSet::new();
                for (admin, heard) in heard {
                    match heard {
                        Heard::Link(link) => learn(&mut known, link),
                        Heard::Polled(at) => match known.get_mut(&admin) {
                            Some(link) => *link = with_poll(*link, Some(at)),
                            None => {
                                unread.insert(admin);
                            }
                        },
                        Heard::Unknown => {
                            unread.insert(admin);
                        }
                    }
                }
                if !unread.is_empty() {
                    for link in store.pump_links(Some(&unread)).await? {
                        learn(&mut known, link);
                    }
                }
                known
            }
            _ => store.pump_links(None).await?.into_iter().map(|link| (link.admin, link)).collect(),
        };
        Ok(self.0.insert(known))
    }
}

/// Takes `link` over the one known of its pump unless that one is of a later version.
fn learn(known: &mut HashMap<AdminId, PumpLink, Ids>, link: PumpLink) {
    let both = known.get(&link.admin).map_or(link, |earlier| newer(*earlier, link));
    known.insert(link.admin, both);
}

#[cfg(test)]
mod tests {
    use pumppilot_engine::{DeviceId, UserId};

    use super::*;

    fn link(admin: AdminId, version: u64, last_poll: i64, load_shedding: bool) -> PumpLink {
        PumpLink {
            admin,
            version,
            controller: None,
            last_poll_at: Some(Timestamp(last_poll)),
            load_shedding,
            grid_up_since: None,
            without_command_since: None,
        }
    }

    fn heard(news: &LinkNews, admin: AdminId) -> Option<Heard> {
        let LinkNews::Heard(heard) = news else { panic!("{news:?}") };
        heard.get(&admin).copied()
    }

    /// News of one pump told in any order tell the later version and the latest poll; a change
    /// the feed did not tell stays to be read whatever comes after it.
    #[test]
    fn news_of_a_pump_tell_its_later_version_and_its_latest_poll() {
        let admin = AdminId(UserId::new());
        let mut state = Tenant::new(admin, 60_000);
        state.version = 4;
        state.controller = Some(DeviceId::new());
        state.device.last_poll_at = Some(Timestamp(1_000));
        state.device.load_shedding = true;

        let mut news = LinkNews::nothing();
        news.hear(admin, None, None, None);
        assert_eq!(heard(&news, admin), None, "a presence alone is no news");
        news.hear(admin, None, Some(Timestamp(3_000)), None);
        news.hear(admin, None, Some(Timestamp(2_000)), None);
        assert_eq!(heard(&news, admin), Some(Heard::Polled(Timestamp(3_000))));
        news.hear(admin, Some(4), None, Some(&state));
        let Some(Heard::Link(told)) = heard(&news, admin) else { panic!("{news:?}") };
        assert_eq!(told, PumpLink { last_poll_at: Some(Timestamp(3_000)), ..PumpLink::of(&state) });

        // An older commit's state heard late changes nothing but a later poll.
        let mut older = state.clone();
        older.version = 3;
        older.device.load_shedding = false;
        older.device.last_poll_at = Some(Timestamp(5_000));
        news.hear(admin, Some(3), None, Some(&older));
        let Some(Heard::Link(told)) = heard(&news, admin) else { panic!("{news:?}") };
        assert_eq!((told.version, told.load_shedding, told.last_poll_at), (4, true, Some(Timestamp(5_000))));

        // A state that is not the commit's own (another version, another tenant) is not taken.
        let other = AdminId(UserId::new());
        news.hear(other, Some(5), None, Some(&state));
        assert_eq!(heard(&news, other), Some(Heard::Unknown));
        news.hear(admin, Some(6), None, None);
        news.hear(admin, Some(7), Some(Timestamp(9_000)), Some(&Tenant { version: 7, ..state.clone() }));
        assert_eq!(heard(&news, admin), Some(Heard::Unknown), "read, whatever came after");

        // Nothing is kept once every link is to be read.
        let mut all = LinkNews::ReadAll;
        all.hear(admin, Some(4), None, Some(&state));
        assert_eq!(all, LinkNews::ReadAll);
    }

    /// Merging keeps the later version's fields and the latest poll of both.
    #[test]
    fn the_later_version_wins_and_the_latest_poll_stays() {
        let admin = AdminId(UserId::new());
        let (old, new) = (link(admin, 2, 9_000, false), link(admin, 3, 4_000, true));
        let merged = newer(old, new);
        assert_eq!((merged.version, merged.load_shedding, merged.last_poll_at), (3, true, Some(Timestamp(9_000))));
        assert_eq!(newer(new, old), merged, "in either order");
        let mut known = HashMap::default();
        learn(&mut known, new);
        learn(&mut known, old);
        assert_eq!(known[&admin], merged);
    }
}
