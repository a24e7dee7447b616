//! Russian tax and registration numbers with their check digits, as the Federal Tax Service
//! defines them: INN (10 digits for organisations, 12 for individuals), KPP (9 characters: a
//! 4-digit tax office, a 2-character reason that may use capital Latin letters, 3 digits) and
//! OGRN (13 digits) / OGRNIP (15 digits).

/// Which number a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxId {
    Inn,
    Kpp,
    Ogrn,
}

impl TaxId {
    /// Checks `s`; the error says what is wrong, for a message that names the field.
    pub fn check(self, s: &str) -> Result<(), &'static str> {
        match self {
            TaxId::Inn => inn(s),
            TaxId::Kpp => kpp(s),
            TaxId::Ogrn => ogrn(s),
        }
    }

    /// The shape as a regular expression (check digits aside), for the API document.
    pub fn pattern(self) -> &'static str {
        match self {
            TaxId::Inn => "^([0-9]{10}|[0-9]{12})$",
            TaxId::Kpp => "^[0-9]{4}[0-9A-Z]{2}[0-9]{3}$",
            TaxId::Ogrn => "^([0-9]{13}|[0-9]{15})$",
        }
    }

    /// The name of the format (shape plus check digits) in the API document.
    pub fn format(self) -> Option<&'static str> {
        match self {
            TaxId::Inn => Some("ru-inn"),
            TaxId::Kpp => None,
            TaxId::Ogrn => Some("ru-ogrn"),
        }
    }
}

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

fn weighted(d: &[u32], weights: &[u32]) -> u32 {
    d.iter().zip(weights).map(|(a, b)| a * b).sum::<u32>() % 11 % 10
}

fn inn(s: &str) -> Result<(), &'static str> {
    let d = digits(s).ok_or("an INN has digits only")?;
    let ok = match d.len() {
        10 => weighted(&d, &[2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[9],
        12 => {
            weighted(&d, &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[10]
                && weighted(&d, &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[11]
        }
        _ => return Err("an INN has 10 digits (organisation) or 12 (individual)"),
    };
    if ok {
        Ok(())
    } else {
        Err("this INN's check digit is wrong (mistyped?)")
    }
}

fn kpp(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let ok = b.len() == 9
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4..6]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b[6..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        Err("a KPP is 4 digits, 2 digits or capital Latin letters, then 3 digits")
    }
}

fn ogrn(s: &str) -> Result<(), &'static str> {
    let d = digits(s).ok_or("an OGRN has digits only")?;
    let (body, modulus) = match d.len() {
        13 => (&d[..12], 11u64),
        15 => (&d[..14], 13u64),
        _ => return Err("an OGRN has 13 digits (OGRNIP: 15)"),
    };
    let n = body.iter().fold(0u64, |acc, x| acc * 10 + u64::from(*x));
    if (n % modulus % 10) as u32 == d[d.len() - 1] {
        Ok(())
    } else {
        Err("this OGRN's check digit is wrong (mistyped?)")
    }
}

/// A valid number of the kind built from `seed` digits (check digits appended), for tests and
/// test-data generators.
pub fn with_check_digits(kind: TaxId, seed: &str) -> String {
    let mut d: Vec<u32> = seed.chars().filter_map(|c| c.to_digit(10)).collect();
    match kind {
        TaxId::Inn if d.len() == 9 => {
            d.push(weighted(&d, &[2, 4, 10, 3, 5, 9, 4, 6, 8]));
        }
        TaxId::Inn => {
            d.truncate(10);
            d.resize(10, 0);
            d.push(weighted(&d, &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]));
            d.push(weighted(&d, &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]));
        }
        TaxId::Ogrn => {
            let modulus = if d.len() >= 14 { 13 } else { 11 };
            d.truncate(if modulus == 13 { 14 } else { 12 });
            let n = d.iter().fold(0u64, |acc, x| acc * 10 + u64::from(*x));
            d.push((n % modulus % 10) as u32);
        }
        TaxId::Kpp => {}
    }
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_numbers_pass_and_typos_do_not() {
        // Sberbank: INN 7707083893, KPP 773601001, OGRN 1027700132195.
        assert!(TaxId::Inn.check("7707083893").is_ok());
        assert!(TaxId::Inn.check("7707083894").is_err());
        assert!(TaxId::Kpp.check("773601001").is_ok());
        assert!(TaxId::Kpp.check("7736AB001").is_ok());
        assert!(TaxId::Kpp.check("7736ab001").is_err());
        assert!(TaxId::Ogrn.check("1027700132195").is_ok());
        assert!(TaxId::Ogrn.check("1027700132196").is_err());
        // A 12-digit personal INN.
        assert!(TaxId::Inn.check("500100732259").is_ok());
        assert!(TaxId::Inn.check("500100732258").is_err());
        assert!(TaxId::Inn.check("12345").is_err());
    }

    #[test]
    fn generated_numbers_are_valid() {
        for seed in ["123456789", "000000000", "987654321"] {
            let inn = with_check_digits(TaxId::Inn, seed);
            assert!(TaxId::Inn.check(&inn).is_ok(), "{inn}");
        }
        let inn12 = with_check_digits(TaxId::Inn, "5001007322");
        assert_eq!(inn12, "500100732259");
        let ogrn = with_check_digits(TaxId::Ogrn, "102770013219");
        assert_eq!(ogrn, "1027700132195");
        let ogrnip = with_check_digits(TaxId::Ogrn, "30450011600015");
        assert!(TaxId::Ogrn.check(&ogrnip).is_ok(), "{ogrnip}");
    }
}
