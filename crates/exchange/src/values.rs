//! How CommerceML values become Kontor field values: currencies written the 1C way (`руб`,
//! `643`), VAT rates (`18/118`, `Без налога`), units, product kinds, decimals with trailing
//! zeros, offer ids (`product#characteristic`).

use kontor_commerceml as cml;

/// An ISO 4217 code for a currency as 1C writes it: the code itself, its number, or the Russian
/// short name. `None` if it is none of these.
pub fn currency(raw: &str) -> Option<String> {
    let s = raw.trim().trim_end_matches('.').to_lowercase();
    let code = match s.as_str() {
        "руб" | "рубль" | "рублей" | "rur" | "643" | "₽" | "р" => "RUB",
        "usd" | "840" | "$" | "долл" | "доллар" => "USD",
        "eur" | "978" | "€" | "евро" => "EUR",
        "byn" | "933" | "бел. руб" | "бел руб" => "BYN",
        "kzt" | "398" | "тенге" | "тг" => "KZT",
        "uah" | "980" | "грн" => "UAH",
        "cny" | "156" | "юань" => "CNY",
        _ if s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic()) => {
            return Some(s.to_uppercase())
        }
        _ => return None,
    };
    Some(code.to_string())
}

/// The VAT rate in percent from `Ставка`: `20`, `18/118` (a calculated rate), `20%`, `НДС 10`;
/// `Без налога` / `Без НДС` is 0. `None` when it says nothing usable.
pub fn vat_rate(raw: &str) -> Option<String> {
    let s = raw.trim().to_lowercase();
    if s.starts_with("без") {
        return Some("0".into());
    }
    let digits: String = s
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .collect();
    let rate = decimal(&digits)?;
    let whole: u32 = rate.split('.').next()?.parse().ok()?;
    (whole < 100 || rate == "100").then_some(rate)
}

/// A decimal as Kontor stores it: `1 719,50` → `1719.5`, `5.0000` → `5`; `None` if not a number.
pub fn decimal(raw: &str) -> Option<String> {
    let s = cml::normalize_decimal(raw)?;
    Some(match s.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => s,
    })
}

/// `a + b` of two decimals as 1C writes them (exactly, by their digits); `None` if `b` is
/// not a number.
pub fn decimal_sum(a: &str, b: &str) -> Option<String> {
    let parse = |s: &str| -> Option<(i128, u32)> {
        let n = cml::normalize_decimal(s)?;
        let (int, frac) = n.split_once('.').unwrap_or((n.as_str(), ""));
        let scale = u32::try_from(frac.len()).ok()?;
        let digits: i128 = format!("{int}{frac}").parse().ok()?;
        Some((digits, scale))
    };
    let (x, xs) = parse(a)?;
    let (y, ys) = parse(b)?;
    let scale = xs.max(ys);
    let sum = x
        .checked_mul(10i128.checked_pow(scale - xs)?)?
        .checked_add(y.checked_mul(10i128.checked_pow(scale - ys)?)?)?;
    let sign = if sum < 0 { "-" } else { "" };
    let abs = sum.unsigned_abs().to_string();
    let scale = scale as usize;
    let text = if scale == 0 {
        abs
    } else {
        let padded = format!("{abs:0>width$}", width = scale + 1);
        let (i, f) = padded.split_at(padded.len() - scale);
        format!("{i}.{f}")
    };
    decimal(&format!("{sign}{text}"))
}

/// A unit's name for people: its short name, else its full name, else its international code.
pub fn unit_name(u: &cml::Unit) -> Option<String> {
    [&u.name, &u.full_name, &u.intl]
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
        .map(|s| clip(s, 255))
}

/// `service` when 1C's requisites say the item is a service, else `goods`.
pub fn product_kind(requisites: &[(String, String)]) -> &'static str {
    let service = requisites.iter().any(|(name, value)| {
        matches!(name.as_str(), "ТипНоменклатуры" | "ВидНоменклатуры")
            && value.trim().to_lowercase().starts_with("услуг")
    });
    if service {
        "service"
    } else {
        "goods"
    }
}

/// Kontor's value type of a property from 1C's `ТипЗначений`.
pub fn property_type(raw: Option<&str>) -> &'static str {
    match raw.map(|s| s.trim().to_lowercase()).as_deref() {
        Some("справочник") => "list",
        Some("число") => "number",
        Some("время") | Some("дата") => "date",
        _ => "string",
    }
}

/// The product part of an offer id: `P#C` → `P`; an id without a characteristic is the
/// product's own.
pub fn product_of_offer(offer_id: &str) -> &str {
    match offer_id.split_once('#') {
        Some((product, _)) if !product.is_empty() => product,
        _ => offer_id,
    }
}

/// At most `max` characters of `s` (1C's values are free text; Kontor's fields have limits).
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sums_are_exact() {
        assert_eq!(decimal_sum("0", "376").as_deref(), Some("376"));
        assert_eq!(decimal_sum("1.5", "0,25").as_deref(), Some("1.75"));
        assert_eq!(decimal_sum("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(decimal_sum("10", "1 000").as_deref(), Some("1010"));
        assert_eq!(decimal_sum("1", "x"), None);
    }

    #[test]
    fn currencies_as_1c_writes_them() {
        for (raw, code) in [
            ("руб", "RUB"),
            ("руб.", "RUB"),
            ("RUB", "RUB"),
            ("643", "RUB"),
            (" usd ", "USD"),
            ("978", "EUR"),
            ("kzt", "KZT"),
        ] {
            assert_eq!(currency(raw).as_deref(), Some(code), "{raw}");
        }
        assert_eq!(currency("тугрики"), None);
        assert_eq!(currency(""), None);
    }

    #[test]
    fn vat_rates_in_their_spellings() {
        assert_eq!(vat_rate("20").as_deref(), Some("20"));
        assert_eq!(vat_rate("18/118").as_deref(), Some("18"));
        assert_eq!(vat_rate("10%").as_deref(), Some("10"));
        assert_eq!(vat_rate("НДС 20").as_deref(), Some("20"));
        assert_eq!(vat_rate("Без налога").as_deref(), Some("0"));
        assert_eq!(vat_rate("без НДС").as_deref(), Some("0"));
        assert_eq!(vat_rate("много"), None);
        assert_eq!(vat_rate("250"), None);
    }

    #[test]
    fn decimals_lose_trailing_zeros_only() {
        assert_eq!(decimal("1719.00").as_deref(), Some("1719"));
        assert_eq!(decimal("1 719,50").as_deref(), Some("1719.5"));
        assert_eq!(decimal("100").as_deref(), Some("100"));
        assert_eq!(decimal("0.125").as_deref(), Some("0.125"));
        assert_eq!(decimal("-2.500").as_deref(), Some("-2.5"));
        assert_eq!(decimal("abc"), None);
    }

    #[test]
    fn offer_ids_name_their_product() {
        assert_eq!(product_of_offer("a-b#c-d"), "a-b");
        assert_eq!(product_of_offer("a-b"), "a-b");
        assert_eq!(product_of_offer("a-b#"), "a-b");
        assert_eq!(product_of_offer("#x"), "#x");
    }

    #[test]
    fn kinds_units_and_clipping() {
        assert_eq!(
            product_kind(&[("ТипНоменклатуры".into(), "Услуга".into())]),
            "service"
        );
        assert_eq!(
            product_kind(&[("ВидНоменклатуры".into(), "Товар".into())]),
            "goods"
        );
        assert_eq!(property_type(Some("Справочник")), "list");
        assert_eq!(property_type(None), "string");
        assert_eq!(clip("абвг", 2), "аб");
        assert_eq!(clip("аб", 5), "аб");
    }
}
