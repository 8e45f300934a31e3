// The country codes a country rule may name: those the country data can return for an address.
// A rule naming any other code never matches (block) or matches nothing (allow-only, which then
// refuses everyone), so such codes are refused when the rule is set, with the code meant where
// the mistake is a common one. Pure data.

/**
 * Every code geoip-lite's country data (geoip-country.dat, geoip-country6.dat) returns: the 249
 * ISO 3166-1 alpha-2 codes, and XK, the user-assigned code it gives Kosovo.
 * test/core-countries.test.ts holds this list to the data files of the installed geoip-lite.
 */
export const GEOIP_COUNTRIES: ReadonlySet<string> = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ ' +
    'BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR ' +
    'CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR ' +
    'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ' +
    'ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ ' +
    'LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ ' +
    'MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF ' +
    'PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI ' +
    'SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR ' +
    'TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW'
  ).split(' '),
);

/** The member states of the European Union, which the country data gives each their own code. */
export const EU_MEMBERS: readonly string[] = 'AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK'.split(' ');

/**
 * Codes people write for a country that the data calls otherwise: reserved or customary codes
 * (UK, EL) and codes withdrawn from ISO 3166-1 (ISO 3166-3), with the codes that replaced them.
 */
export const COUNTRY_MISTAKES: Readonly<Record<string, { what: string; use: readonly string[] }>> = {
  UK: { what: 'reserved, not assigned', use: ['GB'] },
  EL: { what: "the European Union's code for Greece", use: ['GR'] },
  AN: { what: 'the Netherlands Antilles, withdrawn in 2010', use: ['BQ', 'CW', 'SX'] },
  BU: { what: 'Burma, withdrawn in 1989', use: ['MM'] },
  CS: { what: 'Serbia and Montenegro, withdrawn in 2006', use: ['RS', 'ME'] },
  DD: { what: 'East Germany, withdrawn in 1990', use: ['DE'] },
  FX: { what: 'Metropolitan France, withdrawn in 1997', use: ['FR'] },
  TP: { what: 'East Timor, withdrawn in 2002', use: ['TL'] },
  YU: { what: 'Yugoslavia, withdrawn in 2003', use: ['RS', 'ME'] },
  ZR: { what: 'Zaire, withdrawn in 1997', use: ['CD'] },
};

/** Codes ISO 3166-1 leaves to its users (AA, QM-QZ, XA-XZ, ZZ): no country has one, bar XK above. */
export function isUserAssigned(code: string): boolean {
  return code === 'AA' || code === 'ZZ' || /^Q[M-Z]$/.test(code) || /^X[A-Z]$/.test(code);
}
