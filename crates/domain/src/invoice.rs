//! Invoice arithmetic and status rules. Kontor computes every total itself (clients cannot write
//! them), exactly and per line as 1C does (see [`crate::money`]); the paid states follow from the
//! payments recorded against an invoice.

use crate::error::DomainError;
use crate::money::{self, Dec};
use crate::validate::stored_dec;
use serde_json::{Map, Value};

fn dec(m: &Map<String, Value>, key: &str) -> Dec {
    stored_dec(m.get(key))
}

/// Minor units of the invoice's currency.
pub fn minor_units(data: &Map<String, Value>) -> u32 {
    money::minor_units(money::currency_of(data))
}

fn fixed(d: Dec, minor: u32) -> Value {
    Value::from(d.round_to(minor).to_string())
}

/// Recomputes line amounts, VAT and the invoice totals in place.
///
/// With `vat_included` the line price already contains VAT (the usual Russian retail form);
/// otherwise VAT is added on top. VAT is computed per line and rounded there.
pub fn compute_totals(data: &mut Map<String, Value>) -> Result<(), DomainError> {
    let vat_included = data
        .get("vat_included")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let minor = minor_units(data);
    let overflow = |i: usize| DomainError::State {
        field: Some(format!("lines[{i}]")),
        message: format!("line {i} is too large to compute"),
    };
    let (mut net, mut vat, mut total) = (Dec::ZERO, Dec::ZERO, Dec::ZERO);
    if let Some(Value::Array(lines)) = data.get_mut("lines") {
        for (i, line) in lines.iter_mut().enumerate() {
            let Value::Object(l) = line else { continue };
            let f = money::line_figures(
                dec(l, "quantity"),
                dec(l, "price"),
                dec(l, "vat_rate"),
                vat_included,
                minor,
            )
            .ok_or_else(|| overflow(i))?;
            l.insert("amount".into(), fixed(f.amount, minor));
            l.insert("vat_amount".into(), fixed(f.vat, minor));
            l.insert("total".into(), fixed(f.total, minor));
            let line_net = f.total.checked_sub(f.vat).ok_or_else(|| overflow(i))?;
            net = net.checked_add(line_net).ok_or_else(|| overflow(i))?;
            vat = vat.checked_add(f.vat).ok_or_else(|| overflow(i))?;
            total = total.checked_add(f.total).ok_or_else(|| overflow(i))?;
        }
    }
    data.insert("subtotal".into(), fixed(net, minor));
    data.insert("vat_total".into(), fixed(vat, minor));
    data.insert("total".into(), fixed(total, minor));
    let paid = dec(data, "paid_amount");
    data.insert("paid_amount".into(), fixed(paid, minor));
    Ok(())
}

/// Statuses a client may set by hand; the paid states come from payments.
pub const MANUAL_STATUSES: [&str; 3] = ["draft", "sent", "cancelled"];

/// Checks a client's change of an invoice against its current state (`before` is `None` on create).
pub fn check_client_change(
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
) -> Result<(), DomainError> {
    let status = |m: &Map<String, Value>| {
        m.get("status")
            .and_then(Value::as_str)
            .unwrap_or("draft")
            .to_string()
    };
    let new_status = status(after);
    let old_status = before.map(status);
    if old_status.as_deref() != Some(new_status.as_str())
        && !MANUAL_STATUSES.contains(&new_status.as_str())
    {
        return Err(DomainError::State {
            field: Some("status".into()),
            message: format!(
                "status '{new_status}' is set by recorded payments; set draft, sent or cancelled"
            ),
        });
    }
    if let Some(b) = before {
        let paid = !dec(b, "paid_amount").is_zero();
        if new_status == "cancelled" && paid {
            return Err(DomainError::State {
                field: Some("status".into()),
                message: "an invoice with recorded payments cannot be cancelled; delete the payments first".into(),
            });
        }
        if paid && old_status.as_deref() != Some(new_status.as_str()) {
            return Err(DomainError::State {
                field: Some("status".into()),
                message: "the status of an invoice with recorded payments follows its payments; delete the payments first".into(),
            });
        }
        let old = old_status.unwrap_or_default();
        if b.get("lines") != after.get("lines")
            || b.get("vat_included") != after.get("vat_included")
            || b.get("currency") != after.get("currency")
        {
            if !(old == "draft" || old == "sent") {
                return Err(DomainError::State {
                    field: Some("lines".into()),
                    message: format!(
                        "lines, VAT and currency can change only while the invoice is draft or sent (it is {old})"
                    ),
                });
            }
            if paid {
                return Err(DomainError::State {
                    field: Some("lines".into()),
                    message: "lines cannot change once payments are recorded".into(),
                });
            }
        }
    }
    Ok(())
}

/// Sets `paid_amount`, `paid_at` and the paid states from the payments now recorded against the
/// invoice: `(amount, date)` of each live payment.
pub fn apply_payments(data: &mut Map<String, Value>, payments: &[(Dec, Option<String>)]) {
    let minor = minor_units(data);
    let paid = payments
        .iter()
        .try_fold(Dec::ZERO, |acc, (a, _)| acc.checked_add(*a))
        .unwrap_or(Dec::ZERO);
    let total = dec(data, "total");
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("draft")
        .to_string();
    data.insert("paid_amount".into(), fixed(paid, minor));
    let some_paid = !paid.is_zero();
    let new_status = if status == "cancelled" {
        status
    } else if some_paid && paid.cmp_value(total).is_ge() {
        "paid".to_string()
    } else if some_paid {
        "partly_paid".to_string()
    } else if status == "paid" || status == "partly_paid" {
        "sent".to_string()
    } else {
        status
    };
    if new_status == "paid" {
        let last = payments.iter().filter_map(|(_, d)| d.clone()).max();
        match last {
            Some(d) => data.insert("paid_at".into(), Value::from(d)),
            None => data.remove("paid_at"),
        };
    } else {
        data.remove("paid_at");
    }
    data.insert("status".into(), Value::from(new_status));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn totals_with_vat_on_top_and_included() {
        let mut data = json!({"lines": [
            {"quantity": "3", "price": "100.10", "vat_rate": "20"},
            {"quantity": "0.5", "price": "10.00", "vat_rate": "0"}
        ]})
        .as_object()
        .cloned()
        .unwrap();
        compute_totals(&mut data).unwrap();
        assert_eq!(data["subtotal"], json!("305.30"));
        assert_eq!(data["vat_total"], json!("60.06"));
        assert_eq!(data["total"], json!("365.36"));
        assert_eq!(data["lines"][1]["total"], json!("5.00"));

        data.insert("vat_included".into(), json!(true));
        compute_totals(&mut data).unwrap();
        assert_eq!(data["total"], json!("305.30"));
        assert_eq!(data["vat_total"], json!("50.05"));
        assert_eq!(data["subtotal"], json!("255.25"));
    }

    #[test]
    fn payments_move_status() {
        let mut data = json!({"status": "sent", "total": "100.00"})
            .as_object()
            .cloned()
            .unwrap();
        apply_payments(&mut data, &[(d("40"), Some("2026-01-02".into()))]);
        assert_eq!(data["status"], "partly_paid");
        assert_eq!(data["paid_amount"], "40.00");
        apply_payments(
            &mut data,
            &[
                (d("40"), Some("2026-01-02".into())),
                (d("60"), Some("2026-01-05".into())),
            ],
        );
        assert_eq!(data["status"], "paid");
        assert_eq!(data["paid_at"], "2026-01-05");
        apply_payments(&mut data, &[]);
        assert_eq!(data["status"], "sent");
        assert!(!data.contains_key("paid_at"));
    }

    #[test]
    fn paid_status_cannot_be_set_by_hand() {
        let b = json!({"status": "sent"}).as_object().cloned().unwrap();
        let a = json!({"status": "paid"}).as_object().cloned().unwrap();
        assert!(check_client_change(Some(&b), &a).is_err());
        let paid = json!({"status": "paid", "paid_amount": "100.00"})
            .as_object()
            .cloned()
            .unwrap();
        let back = json!({"status": "draft", "paid_amount": "100.00"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(check_client_change(Some(&paid), &back).is_err());
        assert!(check_client_change(Some(&paid), &paid).is_ok());
    }
}
