//! A catalogue of real municipalities for the demo: the five gminy of powiat bolesławiecki
//! (dolnośląskie) that make a plausible joint project (the funding programme asks for at least
//! five JST). TERC codes as in the TERYT register (stan na 2023-01-01); localities and postal
//! codes are real places of each gmina, used only to make addresses look right.

/// How a municipality's rada gminy set the waste-fee installments (uchwała; §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasteSchedule {
    /// Twelve installments, by the 15th of each month.
    Monthly,
    /// Four installments on the property-tax dates (15 Mar/May/Sep/Nov).
    Quarterly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locality {
    pub name: &'static str,
    pub postal_code: &'static str,
    /// Towns have named streets; in villages houses are numbered within the village.
    pub has_streets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Municipality {
    /// TERC code, the GSKO tenant id.
    pub teryt: &'static str,
    pub name: &'static str,
    /// "gmina miejska", "gmina wiejska" or "gmina miejsko-wiejska" (the TERC kind digit).
    pub kind: &'static str,
    pub localities: &'static [Locality],
    pub waste_schedule: WasteSchedule,
    /// Waste fee per resident per month, in grosze (not rounded: art. 6q ust. 2 ucpg).
    pub waste_rate_grosze: i64,
}

const fn town(name: &'static str, postal_code: &'static str) -> Locality {
    Locality {
        name,
        postal_code,
        has_streets: true,
    }
}
const fn village(name: &'static str, postal_code: &'static str) -> Locality {
    Locality {
        name,
        postal_code,
        has_streets: false,
    }
}

pub const MUNICIPALITIES: [Municipality; 5] = [
    Municipality {
        teryt: "0201011",
        name: "Bolesławiec",
        kind: "gmina miejska",
        localities: &[town("Bolesławiec", "59-700")],
        waste_schedule: WasteSchedule::Monthly,
        waste_rate_grosze: 3350,
    },
    Municipality {
        teryt: "0201032",
        name: "Gromadka",
        kind: "gmina wiejska",
        localities: &[
            village("Gromadka", "59-706"),
            village("Osła", "59-706"),
            village("Wierzbowa", "59-706"),
            village("Krzyżowa", "59-706"),
            village("Modła", "59-706"),
            village("Borków", "59-706"),
            village("Różyniec", "59-706"),
        ],
        waste_schedule: WasteSchedule::Quarterly,
        waste_rate_grosze: 3180,
    },
    Municipality {
        teryt: "0201043",
        name: "Nowogrodziec",
        kind: "gmina miejsko-wiejska",
        localities: &[
            town("Nowogrodziec", "59-730"),
            village("Gierałtów", "59-730"),
            village("Wykroty", "59-730"),
            village("Zebrzydowa", "59-730"),
            village("Gościszów", "59-730"),
            village("Milików", "59-730"),
            village("Czerna", "59-730"),
            village("Godzieszów", "59-730"),
        ],
        waste_schedule: WasteSchedule::Quarterly,
        waste_rate_grosze: 3290,
    },
    Municipality {
        teryt: "0201052",
        name: "Osiecznica",
        kind: "gmina wiejska",
        localities: &[
            village("Osiecznica", "59-724"),
            village("Parowa", "59-724"),
            village("Kliczków", "59-724"),
            village("Ołobok", "59-724"),
            village("Przejęsław", "59-724"),
            village("Świętoszów", "59-726"),
        ],
        waste_schedule: WasteSchedule::Monthly,
        waste_rate_grosze: 3050,
    },
    Municipality {
        teryt: "0201062",
        name: "Warta Bolesławiecka",
        kind: "gmina wiejska",
        localities: &[
            village("Warta Bolesławiecka", "59-720"),
            village("Ocice", "59-720"),
            village("Iwiny", "59-720"),
            village("Szczytnica", "59-720"),
            village("Raciborowice", "59-720"),
            village("Tomaszów Bolesławiecki", "59-720"),
        ],
        waste_schedule: WasteSchedule::Quarterly,
        waste_rate_grosze: 3125,
    },
];

/// Localities used for a tenant that is not in the catalogue (common Polish place names).
const FALLBACK_LOCALITIES: &[Locality] = &[
    town("Nowa Wieś", "00-950"),
    village("Zalesie", "00-950"),
    village("Dąbrowa", "00-950"),
    village("Wola", "00-950"),
];

/// The catalogue entry for a TERC code.
pub fn municipality(teryt: &str) -> Option<&'static Municipality> {
    MUNICIPALITIES.iter().find(|m| m.teryt == teryt)
}

/// The municipality for a tenant, or a generic one (same shape, invented place names) so that
/// any valid TERC code can be simulated.
pub(crate) fn municipality_or_generic(teryt: &str) -> Municipality {
    municipality(teryt).copied().unwrap_or(Municipality {
        teryt: "0000000",
        name: "Gmina",
        kind: "gmina",
        localities: FALLBACK_LOCALITIES,
        waste_schedule: if teryt.bytes().map(u32::from).sum::<u32>() % 2 == 0 {
            WasteSchedule::Monthly
        } else {
            WasteSchedule::Quarterly
        },
        waste_rate_grosze: 3200,
    })
}
