//! Invoice arithmetic and status rules. Kontor computes every total itself (clients cannot write
//! them), and the paid states follow from the payments recorded against an invoice.

use crate::error::DomainError;
use crate::validate::{decimal_to_json, parse_decimal};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn dec(m: &Map<String, Value>, key: &str) -> Decimal {
    m.get(key).and_then(parse_decimal).unwrap_or_default()
}

/// Recomputes line amounts, VAT and the invoice totals in place.
///
/// With `vat_included` the line price already contains VAT (the usual Russian retail form);
/// otherwise VAT is added on top.
pub fn compute_totals(data: &mut Map<String, Value>) {
    let vat_included = data
        .get("vat_included")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (mut net_sum, mut vat_sum, mut total_sum) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    if let Some(Value::Array(lines)) = data.get_mut("lines") {
        for line in lines.iter_mut() {
            let Value::Object(l) = line else { continue };
            let amount = round2(dec(l, "quantity") * dec(l, "price"));
            let rate = dec(l, "vat_rate");
            let (vat, total) = if vat_included {
                (
                    round2(amount * rate / (Decimal::ONE_HUNDRED + rate)),
                    amount,
                )
            } else {
                let vat = round2(amount * rate / Decimal::ONE_HUNDRED);
                (vat, amount + vat)
            };
            l.insert("amount".into(), decimal_to_json(amount));
            l.insert("vat_amount".into(), decimal_to_json(vat));
            l.insert("total".into(), decimal_to_json(total));
            net_sum += total - vat;
            vat_sum += vat;
            total_sum += total;
        }
    }
    data.insert("subtotal".into(), decimal_to_json(net_sum));
    data.insert("vat_total".into(), decimal_to_json(vat_sum));
    data.insert("total".into(), decimal_to_json(total_sum));
    if !data.contains_key("paid_amount") {
        data.insert("paid_amount".into(), decimal_to_json(Decimal::ZERO));
    }
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
        let paid = dec(b, "paid_amount");
        if new_status == "cancelled" && paid > Decimal::ZERO {
            return Err(DomainError::State {
                field: Some("status".into()),
                message: "an invoice with recorded payments cannot be cancelled; delete the payments first".into(),
            });
        }
        if paid > Decimal::ZERO && old_status.as_deref() != Some(new_status.as_str()) {
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
            if paid > Decimal::ZERO {
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
pub fn apply_payments(data: &mut Map<String, Value>, payments: &[(Decimal, Option<String>)]) {
    let paid: Decimal = payments.iter().map(|(a, _)| *a).sum();
    let total = dec(data, "total");
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("draft")
        .to_string();
    data.insert("paid_amount".into(), decimal_to_json(paid));
    let new_status = if status == "cancelled" {
        status
    } else if paid > Decimal::ZERO && paid >= total {
        "paid".to_string()
    } else if paid > Decimal::ZERO {
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

    #[test]
    fn totals_with_vat_on_top_and_included() {
        let mut d = json!({"lines": [
            {"quantity": 3, "price": 100.1, "vat_rate": 20},
            {"quantity": 0.5, "price": 10, "vat_rate": 0}
        ]})
        .as_object()
        .cloned()
        .unwrap();
        compute_totals(&mut d);
        assert_eq!(d["subtotal"], json!(305.3));
        assert_eq!(d["vat_total"], json!(60.06));
        assert_eq!(d["total"], json!(365.36));

        d.insert("vat_included".into(), json!(true));
        compute_totals(&mut d);
        assert_eq!(d["total"], json!(305.3));
        assert_eq!(d["vat_total"], json!(50.05));
    }

    #[test]
    fn payments_move_status() {
        let mut d = json!({"status": "sent", "total": 100})
            .as_object()
            .cloned()
            .unwrap();
        apply_payments(&mut d, &[(Decimal::from(40), Some("2026-01-02".into()))]);
        assert_eq!(d["status"], "partly_paid");
        apply_payments(
            &mut d,
            &[
                (Decimal::from(40), Some("2026-01-02".into())),
                (Decimal::from(60), Some("2026-01-05".into())),
            ],
        );
        assert_eq!(d["status"], "paid");
        assert_eq!(d["paid_at"], "2026-01-05");
        apply_payments(&mut d, &[]);
        assert_eq!(d["status"], "sent");
        assert!(!d.contains_key("paid_at"));
    }

    #[test]
    fn paid_status_cannot_be_set_by_hand() {
        let b = json!({"status": "sent"}).as_object().cloned().unwrap();
        let a = json!({"status": "paid"}).as_object().cloned().unwrap();
        assert!(check_client_change(Some(&b), &a).is_err());
        let paid = json!({"status": "paid", "paid_amount": 100})
            .as_object()
            .cloned()
            .unwrap();
        let back = json!({"status": "draft", "paid_amount": 100})
            .as_object()
            .cloned()
            .unwrap();
        assert!(check_client_change(Some(&paid), &back).is_err());
        assert!(check_client_change(Some(&paid), &paid).is_ok());
    }
}
