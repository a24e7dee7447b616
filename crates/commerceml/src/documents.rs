//! Records of order exchange: documents (`Документ`, with their lines, taxes and counterparties)
//! and counterparties (`Контрагент`).
//!
//! Each parser is called right after the record's start tag and consumes the whole record.

use std::io::Read;

use crate::fields::{
    address, contacts, decimal, discounts, flag, name_values, set, tax_rates, taxes, unit, Res,
};
use crate::items::{BankAccount, Counterparty, Document, DocumentLine, PartyKind, Representative};
use crate::read::Xml;
use crate::tags::Tag;

/// `Документ`; `container` is the index of the enclosing `Контейнер`, if any.
pub(crate) fn document<R: Read>(x: &mut Xml<R>, container: Option<u32>) -> Res<Document> {
    let mut d = Document {
        container,
        ..Document::default()
    };
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => set(x, &mut d.id)?,
            Tag::Number => set(x, &mut d.number)?,
            Tag::Date => set(x, &mut d.date)?,
            Tag::Time => set(x, &mut d.time)?,
            Tag::Operation => set(x, &mut d.operation)?,
            Tag::Role => set(x, &mut d.role)?,
            Tag::Currency => set(x, &mut d.currency)?,
            Tag::ExchangeRate => d.rate = decimal(x)?,
            Tag::Sum => d.sum = decimal(x)?,
            Tag::Counterparties => {
                let list = x.open();
                while let Some(tag) = x.child(list)? {
                    match tag {
                        Tag::Counterparty => d.counterparties.push(counterparty(x)?),
                        _ => x.skip()?,
                    }
                }
            }
            Tag::PaymentDue => set(x, &mut d.payment_due)?,
            Tag::Comment => set(x, &mut d.comment)?,
            Tag::Taxes => taxes(x, &mut d.taxes)?,
            Tag::Discounts => discounts(x, &mut d.discounts)?,
            Tag::Products => {
                let list = x.open();
                while let Some(tag) = x.child(list)? {
                    match tag {
                        Tag::Product => d.lines.push(line(x)?),
                        _ => x.skip()?,
                    }
                }
            }
            Tag::Requisites => name_values(x, Tag::Requisite, &mut d.requisites)?,
            Tag::Deleted => d.deleted = flag(x)?,
            Tag::Number1c => set(x, &mut d.number_1c)?,
            Tag::Date1c => set(x, &mut d.date_1c)?,
            Tag::Version => set(x, &mut d.version)?,
            _ => x.skip()?,
        }
    }
    Ok(d)
}

/// `Документ/Товары/Товар`.
fn line<R: Read>(x: &mut Xml<R>) -> Res<DocumentLine> {
    let mut l = DocumentLine::default();
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => set(x, &mut l.id)?,
            Tag::CatalogId => set(x, &mut l.catalog_id)?,
            Tag::Name => set(x, &mut l.name)?,
            Tag::Sku => set(x, &mut l.sku)?,
            Tag::Barcode => set(x, &mut l.barcode)?,
            Tag::BaseUnit | Tag::Unit => l.unit = unit(x)?,
            Tag::Ratio => l.ratio = decimal(x)?,
            Tag::PricePerUnit | Tag::Price => l.price_per_unit = decimal(x)?,
            Tag::Quantity => l.quantity = decimal(x)?,
            Tag::Sum => l.sum = decimal(x)?,
            Tag::Taxes => taxes(x, &mut l.taxes)?,
            Tag::TaxRates => tax_rates(x, &mut l.tax_rates)?,
            Tag::Discounts => discounts(x, &mut l.discounts)?,
            Tag::Requisites => name_values(x, Tag::Requisite, &mut l.requisites)?,
            Tag::Characteristics => name_values(x, Tag::Characteristic, &mut l.characteristics)?,
            _ => x.skip()?,
        }
    }
    Ok(l)
}

/// `Контрагент`, at the root level or in a document.
pub(crate) fn counterparty<R: Read>(x: &mut Xml<R>) -> Res<Counterparty> {
    let mut c = Counterparty::default();
    let (mut official, mut full) = (None, None);
    let (mut legal_address, mut registration_address) = (None, None);
    let (mut legal, mut person) = (false, false);
    let el = x.open();
    while let Some(tag) = x.child(el)? {
        match tag {
            Tag::Id => set(x, &mut c.id)?,
            Tag::Version => set(x, &mut c.version)?,
            Tag::Deleted => c.deleted = flag(x)?,
            Tag::Name => set(x, &mut c.name)?,
            Tag::OfficialName => {
                legal = true;
                set(x, &mut official)?;
            }
            Tag::PartyFullName => {
                person = true;
                set(x, &mut full)?;
            }
            Tag::Role => set(x, &mut c.role)?,
            Tag::Inn => set(x, &mut c.inn)?,
            Tag::Kpp => set(x, &mut c.kpp)?,
            Tag::Okpo | Tag::OkpoCode => set(x, &mut c.okpo)?,
            Tag::LastName => set(x, &mut c.last_name)?,
            Tag::FirstName => set(x, &mut c.first_name)?,
            Tag::MiddleName => set(x, &mut c.middle_name)?,
            Tag::Address => c.address = address(x)?,
            Tag::LegalAddress => {
                legal = true;
                legal_address = address(x)?;
            }
            Tag::RegistrationAddress => {
                person = true;
                registration_address = address(x)?;
            }
            Tag::Contacts => contacts(x, &mut c.contacts)?,
            Tag::BankAccounts => bank_accounts(x, &mut c.bank_accounts)?,
            Tag::Representatives => representatives(x, &mut c.representatives)?,
            Tag::Comment => set(x, &mut c.comment)?,
            _ => x.skip()?,
        }
    }
    legal |= c.kpp.is_some() || c.okpo.is_some();
    person |= c.last_name.is_some() || c.first_name.is_some() || c.middle_name.is_some();
    c.kind = if legal {
        PartyKind::Legal
    } else if person {
        PartyKind::Person
    } else {
        PartyKind::Unknown
    };
    c.full_name = match c.kind {
        PartyKind::Legal => official.or(full),
        _ => full.or(official),
    };
    c.legal_address = legal_address.or(registration_address);
    if c.address.is_none() {
        c.address.clone_from(&c.legal_address);
    }
    Ok(c)
}

/// `РасчетныеСчета/РасчетныйСчет(НомерСчета, Банк(СчетКорреспондентский, Наименование, БИК))`.
fn bank_accounts<R: Read>(x: &mut Xml<R>, out: &mut Vec<BankAccount>) -> Res<()> {
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::BankAccount {
            x.skip()?;
            continue;
        }
        let el = x.open();
        let mut a = BankAccount::default();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::AccountNumber => set(x, &mut a.account)?,
                Tag::Bank => {
                    let bank = x.open();
                    while let Some(tag) = x.child(bank)? {
                        match tag {
                            Tag::CorrAccount => set(x, &mut a.corr_account)?,
                            Tag::Name => set(x, &mut a.bank_name)?,
                            Tag::Bik => set(x, &mut a.bik)?,
                            _ => x.skip()?,
                        }
                    }
                }
                _ => x.skip()?,
            }
        }
        if a != BankAccount::default() {
            out.push(a);
        }
    }
    Ok(())
}

/// `Представители/Представитель(Отношение, Ид, Наименование)`, also with those fields inside a
/// nested `Контрагент` (the official 2.03 samples).
fn representatives<R: Read>(x: &mut Xml<R>, out: &mut Vec<Representative>) -> Res<()> {
    fn fields<R: Read>(x: &mut Xml<R>, r: &mut Representative) -> Res<()> {
        let el = x.open();
        while let Some(tag) = x.child(el)? {
            match tag {
                Tag::Relation => set(x, &mut r.relation)?,
                Tag::Id => set(x, &mut r.id)?,
                Tag::Name => set(x, &mut r.name)?,
                Tag::Counterparty => fields(x, r)?,
                _ => x.skip()?,
            }
        }
        Ok(())
    }
    let list = x.open();
    while let Some(tag) = x.child(list)? {
        if tag != Tag::Representative {
            x.skip()?;
            continue;
        }
        let mut r = Representative::default();
        fields(x, &mut r)?;
        if r != Representative::default() {
            out.push(r);
        }
    }
    Ok(())
}
