//! Proportional split of a payment between an arrear and its interest (art. 55 §2 OP).
//!
//! **Art. 55 §2 OP:** a payment that does not cover the arrear together with the interest due
//! is applied to both **proportionally, in the ratio in which the arrear and the interest stand
//! on the payment date**; neither the taxpayer nor the authority may choose another split.
//!
//! **Rounding (our choice, documented):** the principal share is computed first,
//! `payment × principal / (principal + interest)`, rounded half-up to the grosz; the interest
//! share is the rest of the payment. This keeps `principal + interest == payment` exactly, and
//! it reproduces the spec's example: 436 zł paid on 883 zł of arrears → 403.97 zł principal and
//! 32.03 zł interest. That example implies an interest due of **70 zł** (whole złoty, as art.
//! 63 §1 OP rounds interest): 436 × 883 / 953 = 403.9706… → 403.97, and 436 − 403.97 = 32.03.
//! (Exactly: any interest from 70.00 to 70.02 zł gives 403.97; 70 zł is the only whole-złoty
//! value.) Rounding the interest share half-up first gives the same figures here
//! (32.0252… → 32.03); the two orders differ only when both shares end in exactly half a grosz,
//! where ours gives the grosz to the principal. Whether the ledger (RADIX) does the same is
//! not known — the statute does not say how the shares are rounded.
//!
//! An ESTIMATE; the ledger is the truth.

use gsko_model::Amount;
use serde::Serialize;

/// How a payment splits between one arrear's principal and its interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Split {
    /// Applied to the principal (należność główna).
    pub principal: Amount,
    /// Applied to the interest on arrears (odsetki za zwłokę).
    pub interest: Amount,
    /// What is left of the payment when it covers both in full (0 otherwise). Where it goes is
    /// decided by art. 62 §1 OP (next arrear) or it is an overpayment (art. 72 §1 OP).
    pub surplus: Amount,
}

/// Splits `payment` between `arrear_principal` and `interest_due` per art. 55 §2 OP (see the
/// module documentation for the rounding). When the payment covers both, each is paid in full
/// and the rest is `surplus`.
pub fn split_payment(payment: Amount, arrear_principal: Amount, interest_due: Amount) -> Split {
    let pay = i128::from(payment.grosze());
    let a = i128::from(arrear_principal.grosze());
    let i = i128::from(interest_due.grosze());
    let total = a + i;
    if pay >= total {
        return Split {
            principal: arrear_principal,
            interest: interest_due,
            surplus: to_amount(pay - total),
        };
    }
    // Here 0 <= pay < total, so total > 0. Principal share, rounded half-up:
    // floor((2·pay·a + total) / (2·total)).
    let principal = (2 * pay * a + total) / (2 * total);
    Split {
        principal: to_amount(principal),
        interest: to_amount(pay - principal),
        surplus: Amount::ZERO,
    }
}

/// Every value passed here lies between 0 and an input `Amount`, so it always fits.
fn to_amount(g: i128) -> Amount {
    i64::try_from(g)
        .ok()
        .and_then(|g| Amount::from_grosze(g).ok())
        .unwrap_or(Amount::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zl(s: &str) -> Amount {
        Amount::parse_zloty(s).unwrap()
    }

    #[test]
    fn spec_example_436_on_883() {
        // The spec's figures imply 70 zł of interest due on the payment date.
        let s = split_payment(zl("436"), zl("883"), zl("70"));
        assert_eq!(s.principal, zl("403.97"));
        assert_eq!(s.interest, zl("32.03"));
        assert_eq!(s.surplus, Amount::ZERO);
        // 69 and 71 zł do not reproduce it: 70 zł is the implied value.
        assert_ne!(
            split_payment(zl("436"), zl("883"), zl("69")).principal,
            zl("403.97")
        );
        assert_ne!(
            split_payment(zl("436"), zl("883"), zl("71")).principal,
            zl("403.97")
        );
    }

    #[test]
    fn full_cover_and_edges() {
        let s = split_payment(zl("1000"), zl("883"), zl("70"));
        assert_eq!(
            (s.principal, s.interest, s.surplus),
            (zl("883"), zl("70"), zl("47"))
        );
        let s = split_payment(zl("0"), zl("883"), zl("70"));
        assert_eq!((s.principal, s.interest), (Amount::ZERO, Amount::ZERO));
        let s = split_payment(zl("10"), zl("0"), zl("0"));
        assert_eq!(s.surplus, zl("10"));
        let s = split_payment(zl("10"), zl("100"), zl("0"));
        assert_eq!((s.principal, s.interest), (zl("10"), Amount::ZERO));
        // Half-grosz tie: 1 gr on 1 gr principal + 1 gr interest -> 0.5/0.5 -> principal.
        let one = Amount::from_grosze(1).unwrap();
        let s = split_payment(one, one, one);
        assert_eq!((s.principal, s.interest), (one, Amount::ZERO));
        let max = Amount::from_grosze(i64::MAX).unwrap();
        let s = split_payment(max, max, max);
        assert_eq!(s.principal.grosze() + s.interest.grosze(), i64::MAX);
    }
}
