//! Records of catalogs and offer packages: properties, price types, warehouses, units, products
//! and offers. (Groups are streamed by [`crate::Reader`] itself, since they nest.)
//!
//! Each parser is called right after the record's start tag and consumes the whole record.

use std::io::Read;

use crate::fields::{
    address, contacts, decimal, flag, name_values, opt_bool, property_values, set, tax_rates, unit,
    Res,
};
use crate::items::{Offer, Price, PriceType, Product, Property, Stock, Unit, Warehouse};
use crate::read::Xml;
use crate::tags::Tag;
use crate::values::decimal_or_raw;

fn is_deleted_status(status: &str) -> bool {
    status.trim().to_lowercase() == "удален"
}

/// `Свойство` / `СвойствоНоменклатуры`.
pub(crate) fn property<R: Read>(x: &mut Xml<R>) -> Res<Property> {
    let mut p = Property::default();
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => p.id = x.text()?,
            Tag::Name => set(x, &mut p.name)?,
            Tag::ValueType => set(x, &mut p.value_type)?,
            Tag::Multiple => p.multiple = flag(x)?,
            Tag::Required => p.required = flag(x)?,
            Tag::ForProducts => p.for_products = opt_bool(x)?,
            Tag::ForOffers => p.for_offers = opt_bool(x)?,
            Tag::Deleted => p.deleted = flag(x)?,
            Tag::Version => set(x, &mut p.version)?,
            Tag::ValueVariants => {
                let list = x.open();
                while let Some(tag) = x.child(list)? {
                    match tag {
                        Tag::Dictionary => {
                            let item = x.open();
                            let (mut id, mut value) = (String::new(), String::new());
                            while let Some(tag) = x.child(item)? {
                                match tag {
                                    Tag::ValueId => id = x.text()?,
                                    Tag::Value => value = x.text()?,
                                    _ => x.skip()?,
                                }
                            }
                            if !id.is_empty() || !value.is_empty() {
                                p.values.push((id, value));
                            }
                        }
                        Tag::Value => {
                            if let Some(v) = x.opt_text()? {
                                p.values.push((String::new(), v));
                            }
                        }
                        _ => x.skip()?,
                    }
                }
            }
            _ => x.skip()?,
        }
    }
    Ok(p)
}

/// `ТипЦены`.
pub(crate) fn price_type<R: Read>(x: &mut Xml<R>) -> Res<PriceType> {
    let mut t = PriceType::default();
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => t.id = x.text()?,
            Tag::Name => set(x, &mut t.name)?,
            Tag::Currency => set(x, &mut t.currency)?,
            Tag::Deleted => t.deleted = flag(x)?,
            Tag::Tax => {
                let tax = x.open();
                while let Some(tag) = x.child(tax)? {
                    match tag {
                        Tag::Name => set(x, &mut t.tax_name)?,
                        Tag::IncludedInSum => t.vat_included = opt_bool(x)?,
                        Tag::Excise => t.excise = opt_bool(x)?,
                        _ => x.skip()?,
                    }
                }
            }
            _ => x.skip()?,
        }
    }
    Ok(t)
}

/// `Склад` of a `Склады` list.
pub(crate) fn warehouse<R: Read>(x: &mut Xml<R>) -> Res<Warehouse> {
    let mut w = Warehouse::default();
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => w.id = x.text()?,
            Tag::Name => set(x, &mut w.name)?,
            Tag::Address => w.address = address(x)?,
            Tag::Contacts => contacts(x, &mut w.contacts)?,
            Tag::Deleted => w.deleted = flag(x)?,
            _ => x.skip()?,
        }
    }
    Ok(w)
}

/// `ЕдиницаИзмерения` of a classifier.
pub(crate) fn unit_of_measure<R: Read>(x: &mut Xml<R>) -> Res<Unit> {
    Ok(unit(x)?.unwrap_or_default())
}

/// `Товар` of `Каталог/Товары`.
pub(crate) fn product<R: Read>(x: &mut Xml<R>) -> Res<Product> {
    let mut p = Product {
        status: x.attr("Статус").map(str::to_owned),
        ..Product::default()
    };
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => p.id = x.text()?,
            Tag::Barcode => set(x, &mut p.barcode)?,
            Tag::Sku => set(x, &mut p.sku)?,
            Tag::Name => set(x, &mut p.name)?,
            Tag::BaseUnit => p.unit = unit(x)?,
            Tag::Groups => {
                let list = x.open();
                while let Some(tag) = x.child(list)? {
                    match tag {
                        Tag::Id => p.group_ids.extend(x.opt_text()?),
                        _ => x.skip()?,
                    }
                }
            }
            Tag::Description => set(x, &mut p.description)?,
            Tag::Image => p.images.extend(x.opt_text()?),
            Tag::PropertyValues => property_values(x, &mut p.property_values)?,
            Tag::TaxRates => tax_rates(x, &mut p.tax_rates)?,
            Tag::Characteristics => name_values(x, Tag::Characteristic, &mut p.characteristics)?,
            Tag::Requisites => name_values(x, Tag::Requisite, &mut p.requisites)?,
            Tag::Status => set(x, &mut p.status)?,
            Tag::Deleted => p.deleted = flag(x)?,
            Tag::Version => set(x, &mut p.version)?,
            Tag::Manufacturer => {
                let m = x.open();
                let mut official = None;
                while let Some(tag) = x.child(m)? {
                    match tag {
                        Tag::Name => set(x, &mut p.manufacturer)?,
                        Tag::OfficialName => set(x, &mut official)?,
                        _ => x.skip()?,
                    }
                }
                if p.manufacturer.is_none() {
                    p.manufacturer = official;
                }
            }
            _ => x.skip()?,
        }
    }
    if p.status.as_deref().is_some_and(is_deleted_status) {
        p.deleted = true;
    }
    Ok(p)
}

/// `Предложение`.
pub(crate) fn offer<R: Read>(x: &mut Xml<R>) -> Res<Offer> {
    let mut o = Offer {
        status: x.attr("Статус").map(str::to_owned),
        ..Offer::default()
    };
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => o.id = x.text()?,
            Tag::Barcode => set(x, &mut o.barcode)?,
            Tag::Sku => set(x, &mut o.sku)?,
            Tag::Name => set(x, &mut o.name)?,
            Tag::BaseUnit => o.unit = unit(x)?,
            Tag::Characteristics => name_values(x, Tag::Characteristic, &mut o.characteristics)?,
            Tag::PropertyValues => property_values(x, &mut o.property_values)?,
            Tag::Prices => {
                o.has_prices = true;
                prices(x, &mut o.prices)?;
            }
            Tag::Quantity => o.quantity = decimal(x)?,
            Tag::Warehouse => {
                // XSD 2.x form: `<Склад ИдСклада="…" КоличествоНаСкладе="…"/>`.
                o.has_stock = true;
                o.stock.extend(stock(x)?);
            }
            Tag::Rests => {
                o.has_stock = true;
                rests(x, &mut o)?;
            }
            Tag::Status => set(x, &mut o.status)?,
            Tag::Deleted => o.deleted = flag(x)?,
            Tag::Version => set(x, &mut o.version)?,
            _ => x.skip()?,
        }
    }
    if o.status.as_deref().is_some_and(is_deleted_status) {
        o.deleted = true;
    }
    Ok(o)
}

fn prices<R: Read>(x: &mut Xml<R>, out: &mut Vec<Price>) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::Price {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut p = Price::default();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::PriceTypeId => p.price_type_id = x.text()?,
                Tag::PricePerUnit => p.per_unit = decimal_or_raw(x.text()?),
                Tag::Currency => set(x, &mut p.currency)?,
                Tag::Unit => set(x, &mut p.unit)?,
                Tag::Ratio => p.ratio = decimal(x)?,
                Tag::Presentation => set(x, &mut p.presentation)?,
                Tag::MinQuantity => p.min_quantity = decimal(x)?,
                _ => x.skip()?,
            }
        }
        if p != Price::default() {
            out.push(p);
        }
    }
    Ok(())
}

/// `Остатки/Остаток`: `Склад(Ид, Количество)` per warehouse, or a bare `Количество`.
fn rests<R: Read>(x: &mut Xml<R>, o: &mut Offer) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::Rest {
            x.skip()?;
            continue;
        }
        let rest = x.open();
        while let Some(tag) = x.child(rest)? {
            match tag {
                Tag::Warehouse => o.stock.extend(stock(x)?),
                Tag::Quantity => o.quantity = decimal(x)?,
                _ => x.skip()?,
            }
        }
    }
    Ok(())
}

/// Stock in one warehouse: `<Склад ИдСклада="…" КоличествоНаСкладе="…"/>` or
/// `<Склад><Ид>…</Ид><Количество>…</Количество></Склад>`.
fn stock<R: Read>(x: &mut Xml<R>) -> Res<Option<Stock>> {
    let mut id = x.attr("ИдСклада").map(str::to_owned);
    let mut quantity = x.attr("КоличествоНаСкладе").map(str::to_owned);
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => set(x, &mut id)?,
            Tag::Quantity => set(x, &mut quantity)?,
            _ => x.skip()?,
        }
    }
    Ok(id.map(|warehouse_id| Stock {
        warehouse_id,
        quantity: decimal_or_raw(quantity.unwrap_or_default()),
    }))
}
