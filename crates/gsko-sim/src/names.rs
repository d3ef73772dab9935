//! Polish personal names, surnames, streets and company-name parts used by the generators.
//! Surnames are listed in the masculine form; [`feminine_surname`] derives the feminine one
//! (Kowalski → Kowalska, Biały → Biała; noun surnames such as Nowak do not change).

pub(crate) const MALE_FIRST: &[&str] = &[
    "Jan",
    "Piotr",
    "Krzysztof",
    "Andrzej",
    "Tomasz",
    "Paweł",
    "Michał",
    "Marcin",
    "Stanisław",
    "Józef",
    "Marek",
    "Łukasz",
    "Grzegorz",
    "Adam",
    "Zbigniew",
    "Jerzy",
    "Tadeusz",
    "Mateusz",
    "Dariusz",
    "Mariusz",
    "Wojciech",
    "Ryszard",
    "Jakub",
    "Henryk",
    "Robert",
    "Kazimierz",
    "Jacek",
    "Maciej",
    "Kamil",
    "Janusz",
    "Mirosław",
    "Bartłomiej",
    "Zdzisław",
    "Sławomir",
    "Bogdan",
    "Przemysław",
    "Szymon",
    "Wiesław",
    "Dawid",
    "Kacper",
];

pub(crate) const FEMALE_FIRST: &[&str] = &[
    "Anna",
    "Maria",
    "Katarzyna",
    "Małgorzata",
    "Agnieszka",
    "Barbara",
    "Ewa",
    "Krystyna",
    "Elżbieta",
    "Magdalena",
    "Joanna",
    "Zofia",
    "Aleksandra",
    "Monika",
    "Danuta",
    "Teresa",
    "Irena",
    "Beata",
    "Jadwiga",
    "Halina",
    "Dorota",
    "Grażyna",
    "Jolanta",
    "Bożena",
    "Marta",
    "Justyna",
    "Renata",
    "Urszula",
    "Helena",
    "Alicja",
    "Karolina",
    "Natalia",
    "Wiesława",
    "Stanisława",
    "Genowefa",
    "Iwona",
    "Agata",
    "Weronika",
    "Żaneta",
    "Łucja",
];

pub(crate) const SURNAMES: &[&str] = &[
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Wojciechowski",
    "Kwiatkowski",
    "Krawczyk",
    "Kaczmarek",
    "Piotrowski",
    "Grabowski",
    "Zając",
    "Pawłowski",
    "Michalski",
    "Król",
    "Wróbel",
    "Wieczorek",
    "Jabłoński",
    "Nowakowski",
    "Majewski",
    "Olszewski",
    "Stępień",
    "Jaworski",
    "Malinowski",
    "Dudek",
    "Adamczyk",
    "Górski",
    "Nowicki",
    "Pawlak",
    "Sikora",
    "Witkowski",
    "Rutkowski",
    "Walczak",
    "Baran",
    "Michalak",
    "Szewczyk",
    "Ostrowski",
    "Tomaszewski",
    "Pietrzak",
    "Zalewski",
    "Wróblewski",
    "Marciniak",
    "Jasiński",
    "Zawadzki",
    "Bąk",
    "Jakubowski",
    "Sadowski",
    "Duda",
    "Włodarczyk",
    "Wilk",
    "Chmielewski",
    "Borkowski",
    "Sokołowski",
    "Szczepański",
    "Sawicki",
    "Lis",
    "Kucharski",
    "Mazurek",
    "Kubiak",
    "Kalinowski",
    "Wysocki",
    "Czarnecki",
    "Żak",
    "Głowacki",
    "Sobczak",
    "Kołodziej",
    "Łuczak",
    "Biały",
    "Czarny",
    "Śliwiński",
    "Gołębiowski",
];

/// Feminine form of a surname given in the masculine form.
pub(crate) fn feminine_surname(male: &str) -> String {
    if let Some(stem) = male.strip_suffix("ki") {
        format!("{stem}ka")
    } else if let Some(stem) = male.strip_suffix('y') {
        format!("{stem}a")
    } else {
        male.to_owned()
    }
}

pub(crate) const STREETS: &[&str] = &[
    "ul. Adama Mickiewicza",
    "ul. Tadeusza Kościuszki",
    "ul. Polna",
    "ul. Leśna",
    "ul. Słoneczna",
    "ul. Krótka",
    "ul. Szkolna",
    "ul. Ogrodowa",
    "ul. Lipowa",
    "ul. Łąkowa",
    "ul. Brzozowa",
    "ul. Kwiatowa",
    "ul. Jana Pawła II",
    "ul. Stefana Żeromskiego",
    "ul. Źródlana",
    "ul. 3 Maja",
    "Rynek",
    "ul. Wrocławska",
    "pl. Wolności",
    "al. Niepodległości",
    "ul. Bolesława Chrobrego",
    "ul. Kolejowa",
    "ul. Górnicza",
    "ul. Zgorzelecka",
    "ul. Jeleniogórska",
    "ul. Marii Konopnickiej",
    "ul. Henryka Sienkiewicza",
    "ul. Fryderyka Chopina",
    "ul. Władysława Andersa",
    "ul. Bolesława Prusa",
    "ul. Garncarska",
    "ul. Kasztanowa",
    "ul. Świerkowa",
    "ul. Dębowa",
    "ul. Młyńska",
    "ul. Parkowa",
    "ul. Żołnierzy II Armii Wojska Polskiego",
    "ul. Ceramiczna",
];

pub(crate) const COMPANY_WORDS: &[&str] = &[
    "Bolmar",
    "Ceramika",
    "Agro-Pol",
    "Drewex",
    "Kwisa",
    "Bóbr",
    "Gromex",
    "Transbud",
    "Polbruk",
    "Łużyce",
    "Zielony Dom",
    "Kamień",
    "Świt",
    "Jarzębina",
    "Sudety",
    "Bór",
    "Dolnośląska Ceramika",
    "Żuraw",
    "Młynar",
];

pub(crate) const SAINTS: &[&str] = &[
    "św. Mikołaja",
    "Najświętszej Marii Panny",
    "św. Jana Chrzciciela",
    "św. Jadwigi Śląskiej",
    "św. Józefa",
];

/// ASCII form of a Polish word for e-mail local parts.
pub(crate) fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            Some(match c {
                'ą' | 'Ą' => 'a',
                'ć' | 'Ć' => 'c',
                'ę' | 'Ę' => 'e',
                'ł' | 'Ł' => 'l',
                'ń' | 'Ń' => 'n',
                'ó' | 'Ó' => 'o',
                'ś' | 'Ś' => 's',
                'ź' | 'Ź' | 'ż' | 'Ż' => 'z',
                c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
                _ => return None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gendered_surnames() {
        assert_eq!(feminine_surname("Kowalski"), "Kowalska");
        assert_eq!(feminine_surname("Czarnecki"), "Czarnecka");
        assert_eq!(feminine_surname("Zawadzki"), "Zawadzka");
        assert_eq!(feminine_surname("Biały"), "Biała");
        assert_eq!(feminine_surname("Nowak"), "Nowak");
        assert_eq!(ascii_fold("Łukasz Żółć"), "lukaszzolc");
    }
}
