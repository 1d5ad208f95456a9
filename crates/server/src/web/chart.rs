//! Bar charts as inline SVG, drawn on the server: no chart library, no script, nothing that the
//! Content-Security-Policy would have to allow. Colours come from the stylesheet's classes.

use maud::{Markup, html};

use super::i18n::{Lang, digits, number};

/// One bar: its label and its value (seconds, drawn and written in minutes; or whole taka).
pub struct Bar {
    pub label: String,
    pub value: i64,
}

/// Minutes for a bar's value: whole minutes, or tenths below ten minutes so short runs show.
pub fn minutes_text(seconds: i64, lang: Lang) -> String {
    if seconds < 600 {
        let tenths = (seconds * 10 + 30) / 60;
        digits(&format!("{}.{}", tenths / 10, tenths % 10), lang)
    } else {
        number((seconds + 30) / 60, lang)
    }
}

const WIDTH: i64 = 640;

/// The names on a chart's axes: the unit of the values and what the bars are.
pub struct Axes<'a> {
    pub unit: &'a str,
    pub across: &'a str,
}

/// Vertical bars (minutes per day), value above each bar, label below; the axes carry the unit
/// (minutes, with the top value) and what the bars are (days).
pub fn columns(bars: &[Bar], title: &str, lang: Lang, axes: &Axes) -> Markup {
    columns_of(bars, title, lang, axes, &minutes_text)
}

/// Whole numbers as they are (taka), in the language's digits.
pub fn amount_text(value: i64, lang: Lang) -> String {
    number(value, lang)
}

/// Vertical bars whose values `text` writes (in the unit `axes` names).
pub fn columns_of(bars: &[Bar], title: &str, lang: Lang, axes: &Axes, text: &dyn Fn(i64, Lang) -> String) -> Markup {
    let minutes_text = text;
    let height = 256;
    // The top holds the unit, a line above the top value (on a phone the text is drawn 24 high,
    // and the two once overlapped); the bottom holds the bars' labels and, a line below them,
    // what the bars are.
    let (top, bottom, left) = (56, 64, 56);
    let plot = height - top - bottom;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let slot = (WIDTH - 2 * left) / (bars.len() as i64).max(1);
    let bar_width = (slot * 7 / 10).max(2);
    // At most six labels, so they never run into each other (Bangla month names are long).
    let label_every = bars.len().div_ceil(6).max(1);
    html! {
        svg.chart viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-label=(title) {
            title { (title) }
            line.axis x1=(left) y1=(top + plot) x2=(WIDTH - left) y2=(top + plot) {}
            line.axis x1=(left) y1=(top) x2=(left) y2=(top + plot) {}
            text.unit x="4" y=(top - 30) text-anchor="start" { (axes.unit) }
            text.tick x=(left - 6) y=(top + 5) text-anchor="end" { (minutes_text(max, lang)) }
            text.tick x=(left - 6) y=(top + plot) text-anchor="end" { (digits("0", lang)) }
            text.unit x=(WIDTH - left) y=(height - 2) text-anchor="end" { (axes.across) }
            @for (i, bar) in bars.iter().enumerate() {
                @let h = bar.value * plot / max;
                @let x = left + i as i64 * slot + (slot - bar_width) / 2;
                @let cx = x + bar_width / 2;
                rect.bar x=(x) y=(top + plot - h) width=(bar_width) height=(h) {
                    title { (bar.label) ": " (minutes_text(bar.value, lang)) }
                }
                @if bar.value > 0 {
                    text.value x=(cx) y=(top + plot - h - 6) text-anchor="middle" { (minutes_text(bar.value, lang)) }
                }
                @if i % label_every == 0 {
                    text.label x=(cx) y=(top + plot + 28) text-anchor="middle" { (bar.label) }
                }
            }
        }
    }
}

/// Horizontal bars (minutes per farmer): the name and the value are page text (readable on a
/// phone at any width), only the bar itself is a small SVG.
pub fn rows(bars: &[Bar], title: &str, lang: Lang, unit: &str) -> Markup {
    rows_of(bars, title, lang, unit, &minutes_text)
}

/// Horizontal bars whose values `text` writes, followed by `unit`.
pub fn rows_of(bars: &[Bar], title: &str, lang: Lang, unit: &str, text: &dyn Fn(i64, Lang) -> String) -> Markup {
    let minutes_text = text;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    html! {
        ul.hbars aria-label=(title) {
            @for bar in bars {
                @let width = if bar.value > 0 { (bar.value * 1000 / max).max(5) } else { 0 };
                li {
                    span.hb-name { (bar.label) }
                    svg.hb-bar viewBox="0 0 1000 10" preserveAspectRatio="none" aria-hidden="true" {
                        rect.bar width=(width) height="10" {}
                    }
                    span.hb-value { (minutes_text(bar.value, lang)) " " (unit) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_labels_are_escaped() {
        let bars = vec![
            Bar { label: "<b>Karim</b>".into(), value: 1800 },
            Bar { label: "Salma".into(), value: 900 },
            Bar { label: "Idle".into(), value: 0 },
        ];
        let list = rows(&bars, "per farmer", Lang::En, "min").into_string();
        assert!(list.contains("30 min"), "values carry their unit: {list}");
        assert!(list.contains("&lt;b&gt;Karim&lt;/b&gt;") && !list.contains("<b>"));
        assert!(list.contains(r#"width="1000""#), "the largest bar fills the room: {list}");
        assert!(list.contains(r#"width="500""#), "half the value, half the bar");
        let days = columns(&bars, "per day", Lang::Bn, &Axes { unit: "মিনিট", across: "দিন" }).into_string();
        assert!(days.contains("৩০") && days.starts_with("<svg"));
        assert!(days.contains(">মিনিট<") && days.contains(">দিন<"), "the axes say what they count: {days}");
        assert_eq!(minutes_text(12, Lang::En), "0.2");
        assert_eq!(minutes_text(599, Lang::Bn), "১০.০");
        assert_eq!(minutes_text(3600, Lang::En), "60");
        let taka = vec![Bar { label: "Karim".into(), value: 1500 }];
        let list = rows_of(&taka, "cash per farmer", Lang::Bn, "টাকা", &amount_text).into_string();
        assert!(list.contains("১,৫০০ টাকা"), "amounts carry their unit: {list}");
        let days = columns_of(&taka, "cash per day", Lang::En, &Axes { unit: "taka", across: "day" }, &amount_text);
        assert!(days.into_string().contains(">1,500<"));
    }
}
