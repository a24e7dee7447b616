//! Parsers of the small structures several records share: flags, units, name/value lists,
//! property values, tax rates, taxes, discounts, addresses and contacts.
//!
//! Each function is called right after the start tag of the element it reads and consumes that
//! element entirely.

use std::io::Read;

use crate::items::{Address, Contact, Discount, PropertyValue, Tax, TaxRate, Unit};
use crate::read::{ReadError, Xml};
use crate::tags::Tag;
use crate::values::{decimal_or_raw, parse_bool};

pub(crate) type Res<T> = Result<T, ReadError>;

/// A boolean element that marks something when true (`ПометкаУдаления`, `Множественное`).
pub(crate) fn flag<R: Read>(x: &mut Xml<R>) -> Res<bool> {
    Ok(parse_bool(&x.text()?) == Some(true))
}

/// A boolean element; `None` if empty or not a boolean.
pub(crate) fn opt_bool<R: Read>(x: &mut Xml<R>) -> Res<Option<bool>> {
    Ok(parse_bool(&x.text()?))
}

/// A number: normalised, or raw when it is not one; `None` if empty.
pub(crate) fn decimal<R: Read>(x: &mut Xml<R>) -> Res<Option<String>> {
    Ok(x.opt_text()?.map(decimal_or_raw))
}

/// Sets `slot` from the element's text unless the element is empty.
pub(crate) fn set<R: Read>(x: &mut Xml<R>, slot: &mut Option<String>) -> Res<()> {
    if let Some(v) = x.opt_text()? {
        *slot = Some(v);
    }
    Ok(())
}

/// A unit: `БазоваяЕдиница` (attributes + text, possibly with `Пересчет` children) or `Единица` /
/// `ЕдиницаИзмерения` (child elements).
pub(crate) fn unit<R: Read>(x: &mut Xml<R>) -> Res<Option<Unit>> {
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let mut u = Unit {
        code: owned(x.attr("Код")),
        name: owned(x.attr("НаименованиеКраткое")),
        full_name: owned(x.attr("НаименованиеПолное")),
        intl: owned(x.attr("МеждународноеСокращение")),
    };
    let mut id = None;
    let mut own = String::new();
    let el = x.open();
    while let Some(tag) = x.child_with_text(el, &mut own)? {
        match tag {
            Tag::Code => set(x, &mut u.code)?,
            Tag::Id => set(x, &mut id)?,
            Tag::ShortName | Tag::Name => set(x, &mut u.name)?,
            Tag::FullName => set(x, &mut u.full_name)?,
            Tag::IntlAbbr => set(x, &mut u.intl)?,
            _ => x.skip()?,
        }
    }
    let own = own.trim();
    if u.name.is_none() && !own.is_empty() {
        u.name = Some(own.to_owned());
    }
    if u.code.is_none() {
        u.code = id;
    }
    // CML 3.1: `<БазоваяЕдиница>796 </БазоваяЕдиница>` refers to a classifier unit by code.
    if u.code.is_none()
        && u.name
            .as_deref()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        u.code = u.name.take();
    }
    Ok((u != Unit::default()).then_some(u))
}

/// `<List><Item><Наименование/><Значение/>…</Item>…</List>`: one pair per `Значение` (a pair with
/// an empty value when there is none); items without a name are dropped.
pub(crate) fn name_values<R: Read>(
    x: &mut Xml<R>,
    item: Tag,
    out: &mut Vec<(String, String)>,
) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != item {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut name = None;
        let mut values = Vec::new();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::Name => set(x, &mut name)?,
                Tag::Value => values.extend(x.opt_text()?),
                _ => x.skip()?,
            }
        }
        let Some(name) = name else { continue };
        if values.is_empty() {
            out.push((name, String::new()));
        } else {
            out.extend(values.into_iter().map(|v| (name.clone(), v)));
        }
    }
    Ok(())
}

/// `ЗначенияСвойств/ЗначенияСвойства(Ид, Значение*)`.
pub(crate) fn property_values<R: Read>(x: &mut Xml<R>, out: &mut Vec<PropertyValue>) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::PropertyValue {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut pv = PropertyValue::default();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::Id => pv.property_id = x.text()?,
                Tag::Value | Tag::ValueId => pv.values.extend(x.opt_text()?),
                _ => x.skip()?,
            }
        }
        if !pv.property_id.is_empty() {
            out.push(pv);
        }
    }
    Ok(())
}

/// `СтавкиНалогов/СтавкаНалога(Наименование, Ставка)`.
pub(crate) fn tax_rates<R: Read>(x: &mut Xml<R>, out: &mut Vec<TaxRate>) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::TaxRate {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut rate = TaxRate::default();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::Name => set(x, &mut rate.name)?,
                Tag::Rate => rate.rate = x.text()?,
                _ => x.skip()?,
            }
        }
        if rate != TaxRate::default() {
            out.push(rate);
        }
    }
    Ok(())
}

/// `Налоги/Налог(Наименование, УчтеноВСумме, Сумма, Ставка)`.
pub(crate) fn taxes<R: Read>(x: &mut Xml<R>, out: &mut Vec<Tax>) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::Tax {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut tax = Tax::default();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::Name => set(x, &mut tax.name)?,
                Tag::IncludedInSum => tax.included = opt_bool(x)?,
                Tag::Sum => tax.amount = decimal(x)?,
                Tag::Rate => set(x, &mut tax.rate)?,
                _ => x.skip()?,
            }
        }
        if tax != Tax::default() {
            out.push(tax);
        }
    }
    Ok(())
}

/// `Скидки/Скидка(Наименование, Сумма, Процент, УчтеноВСумме)`.
pub(crate) fn discounts<R: Read>(x: &mut Xml<R>, out: &mut Vec<Discount>) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::Discount {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut d = Discount::default();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::Name => set(x, &mut d.name)?,
                Tag::Sum => d.amount = decimal(x)?,
                Tag::Percent => d.percent = decimal(x)?,
                Tag::IncludedInSum => d.included = opt_bool(x)?,
                _ => x.skip()?,
            }
        }
        if d != Discount::default() {
            out.push(d);
        }
    }
    Ok(())
}

/// An address element (`Адрес`, `ЮридическийАдрес`, `АдресРегистрации`); `None` when it holds
/// nothing.
pub(crate) fn address<R: Read>(x: &mut Xml<R>) -> Res<Option<Address>> {
    let mut a = Address::default();
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Presentation => set(x, &mut a.presentation)?,
            Tag::AddressField => {
                let field = x.open();
                let (mut kind, mut value) = (None, None);
                while let Some(tag) = x.child(field)? {
                    match tag {
                        Tag::Type => set(x, &mut kind)?,
                        Tag::Value => set(x, &mut value)?,
                        _ => x.skip()?,
                    }
                }
                if kind.is_some() || value.is_some() {
                    a.fields
                        .push((kind.unwrap_or_default(), value.unwrap_or_default()));
                }
            }
            _ => x.skip()?,
        }
    }
    Ok((a != Address::default()).then_some(a))
}

/// `Контакты/Контакт(Тип, Значение)`.
pub(crate) fn contacts<R: Read>(x: &mut Xml<R>, out: &mut Vec<Contact>) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::Contact {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut c = Contact::default();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::Type => set(x, &mut c.kind)?,
                Tag::Value => set(x, &mut c.value)?,
                _ => x.skip()?,
            }
        }
        if c != Contact::default() {
            out.push(c);
        }
    }
    Ok(())
}
