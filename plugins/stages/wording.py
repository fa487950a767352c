"""Wording patterns shared by the nlp hints, the offline provider and the validation checks:
case-specific and deictic wording, references to the source, answer framing, citations and
figure/table references, pronoun, discourse-marker and subject-less openings, negation cues,
hedges, direction words and the categories of clinical terms.

One place, so that what the nlp stage flags, what the offline rules avoid and what validation
rejects can never drift apart.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import lru_cache
from itertools import islice

CASE_SPECIFIC = re.compile(
    r"\b(?:this|the|our|that) (?:patient|woman|man|person|boy|girl|individual|case)(?:'s)?\b"
    r"|\bthis (?:[\w-]+ ){1,2}(?:patient|woman|man|person)\b"
    r"|\b(?:she|he|her|his|him|hers|himself|herself)\b"
    r"|\b\d+-year-old\b"
    r"|\b(?:in|for|to) this (?:setting|case|scenario|presentation|situation)\b"
    r"|\bthis (?:presentation|scenario|vignette)\b"
    r"|\bas in this\b"
    r"|\b(?:applies|apply|present|fit|fits) here\b"
    r"|\bnone of which (?:is|are) present\b"
    r"|\bwould be (?:inappropriate|appropriate|incorrect|unnecessary|reasonable)\b"
    r"|\b(?:not indicated|unnecessary|inappropriate|premature) now\b",
    re.I,
)
DEICTIC = re.compile(
    r"\b(?:the|as) above\b|\bas (?:noted|mentioned|described|discussed) (?:above|earlier|previously)\b"
    r"|\bthe (?:former|latter)\b|\bthe following\b|\bthe findings above\b"
    r"|^the (?:laboratory|clinical|examination|imaging|biopsy) (?:findings|results|studies)\b(?! of\b| in\b)",
    re.I,
)
SOURCE_REFERENCE = re.compile(
    r"\boptions? [A-E]\b"
    r"|\b(?:the|this) (?:critique|question|explanation|answer choice|vignette|stem|item|table above)\b"
    r"|\bis incorrect\b",
    re.I,
)
#: The question's framing: what the answer is, not a fact ("The most likely diagnosis is ...").
ANSWER_FRAMING = re.compile(
    r"\bmost (?:likely|probable) (?:diagnosis|explanation)\b"
    r"|\bmost (?:likely|probable) (?:cause|etiology|mechanism|organism|pathogen)\b"
    r"(?!\s+(?:of|for|in)\s+(?!this\b|the patient|her\b|his\b))"
    r"|\bmost appropriate (?:(?:initial|next|immediate|first|diagnostic|long-term|additional) )*"
    r"(?:step|treatment|management|test|testing|therapy|choice|option|intervention|evaluation|medication|agent)\b"
    r"|\b(?:immediate|appropriate|best) next step\b"
    r"|\b(?:in)?correct (?:answer|option|choice|response)\b"
    r"|\bbest (?:answer|option|choice|response)\b"
    r"|\bthe answer is\b|\bis the (?:answer|right choice)\b",
    re.I,
)
#: A citation, or a reference to a figure, table or image the card will not show.
CITATION = re.compile(
    r"(?i:\((?:see )?(?:table|figure|fig\.)s?:?[^)]*\)|\bsee (?:the )?(?:table|figure|image)s?\b"
    r"|\((?:not )?(?:shown|pictured|arrows?|arrowheads?|circled)\)"
    r"|\bas (?:shown|seen|illustrated|depicted|pictured)(?: (?:in|on) (?:the )?(?:figure|table|image|photograph"
    r"|picture|radiograph|ECG|electrocardiogram|panel|video)\b|\s*[,.;)])"
    r"|\b(?:e?tables?|e?figures?|figs?\.|appendix) (?:\d+[a-z]?|[ivx]+)\b|\b(?:table|figure)s?:|\bet al\b\.?"
    r"|\b(?:pp?\.|pages?) ?\d+ ?[–—-] ?\d+|\bdoi ?:|\bPMID\b)"
    r"|\b(?:19|20)\d{2} ?; ?\d+(?:\(\d+\))? ?: ?[eE]?\d+|\[\d+(?:[,–-] ?\d+)*\]|\bBox \d+\b"
    r"|\b(?:N Engl J Med|JAMA|Lancet|BMJ|Ann Intern Med|Circulation|Chest|Clin Infect Dis|MMWR)\b"
    r"|\([A-Z][a-z]+(?: et al\.?| and [A-Z][a-z]+)?,? (?:19|20)\d{2}\)",
)
OPTION_PARENTHESIS = re.compile(r"\s*\((?:Options?|Answers?|Choices?) [A-E](?:(?:,| and| or|, and) [A-E])*\)")
TABLE_PARENTHESIS = re.compile(r"\s*\((?:see )?Table:?[^)]*\)", re.I)

#: "It is imperative to ...", "It is unclear whether ...": an expletive "it" refers to nothing.
_EXPLETIVE_IT = (
    r"it (?:is|was|can be|may be|has been|remains|seems|appears|would be|should be|becomes) "
    r"(?:(?:not|also|often|usually|generally|very|especially|therefore|thus|now|still|increasingly) )*"
    r"(?:important|imperative|essential|necessary|crucial|critical|vital|reasonable|advisable|prudent"
    r"|appropriate|inappropriate|safe|unsafe|helpful|useful|common|uncommon|rare|unusual|possible|impossible"
    r"|difficult|easy|unclear|uncertain|unknown|known|recommended|likely|unlikely|acceptable|preferable"
    r"|customary|standard|mandatory|wise|best|better|worth|worthwhile|thought|believed|estimated|suggested"
    r"|reported|presumed|clear|true|noteworthy|notable|shown|proposed|hypothesized|debated|controversial) "
    r"(?:to|that|whether|if)\b"
)
PRONOUN_OPENING = re.compile(
    rf"^(?:(?!{_EXPLETIVE_IT})it|its|they|their|them|these|those|this|that|such|he|she|his|her|either|neither"
    r"|both of them)\b",
    re.I,
)
#: A connective that ties the statement to a sentence the card does not show. The ambiguous
#: ones ("In addition to X, ...", "Overall survival") count only with their comma.
DISCOURSE_OPENING = re.compile(
    r"^(?:(?:however|similarly|likewise|moreover|furthermore|therefore|thus|hence|consequently|additionally"
    r"|conversely|nevertheless|nonetheless|accordingly|subsequently)\b,?"
    r"|(?:in addition|also|further|in contrast|by contrast|as a result|on the other hand|for this reason"
    r"|because of this|in this case|instead|otherwise|finally|notably|importantly|meanwhile|indeed|in fact"
    r"|in summary|in conclusion|overall|alternatively|besides|again|rather|then|still|yet|first|second|third"
    r"|lastly|for example|for instance|in particular|specifically|as such|even so|that said|in turn),)",
    re.I,
)

#: Nouns that name a kind of thing without saying which one ("the disorder", "the dose").
GENERIC_HEADS = frozenset(
    """lesion lesions rash rashes eruption eruptions disorder disorders disease diseases condition conditions
    syndrome syndromes illness illnesses infection infections tumor tumors mass masses drug drugs agent agents
    medication medications medicine medicines therapy therapies treatment treatments regimen regimens dose doses
    dosage bolus boluses infusion test tests testing study studies procedure procedures finding findings result
    results patient patients organism organisms pathogen pathogens complication complications diagnosis
    symptom symptoms sign signs feature features presentation manifestation manifestations abnormality
    abnormalities episode episodes elevation increase rise decrease drop change changes effect effects
    mechanism class combination approach strategy intervention management screening evaluation workup
    discontinuation initiation intake correction disorder's condition's process entity problem
    recurrence recurrences reaction reactions examination examinations measure measures interventions
    approaches strategies procedures agent's""".split()
)
_GENERIC = "|".join(sorted(GENERIC_HEADS, key=len, reverse=True))
#: What may stand between "The" and a generic head without naming anything.
_BARE_MODIFIERS = (
    r"(?:(?:typical|characteristic|classic|usual|common|initial|first|first-line|preferred|recommended|primary"
    r"|main|principal|underlying|causative|responsible|affected|same|standard|definitive|appropriate|best"
    r"|subsequent|next|total|daily|starting|maintenance|loading|target|individual|small|large|early|late"
    r"|acute|chronic|most common|usual|key|major|minor|classic|cutaneous|skin|oral|clinical|overall|new"
    r"|second|third|final|recurrent|resulting) )"
)
_NAMING_FOLLOWER = (
    r"(?!\s+(?:of|for|in|with|to|against|from|caused|due|associated|seen|used|after|on|among|by|that|which"
    r"|who|called|known|named|including)\b)"
)
#: What follows a subject noun: a verb, not a second noun ("the medication list" is no
#: generic subject).
_PREDICATE_NEXT = (
    r"(?:(?=\s+(?:is|are|was|were|has|have|had|can|could|may|might|should|must|will|would|does|did|also|then|at"
    r"|during|within|before|after|alone|[a-z]+ly|[a-z]+(?:es|s|ed))\b|\s*[,:;])"
    r"|(?<=s)(?=\s+[a-z]))"  # a plural subject takes the plain verb: "These agents raise ..."
)
#: Openings whose subject is only in another sentence: "This condition ...", "The typical
#: lesion ...", "Treatment is ...". (An opening verb is `PREDICATE_VERBS`'s business.)
SUBJECTLESS_OPENING = re.compile(
    rf"^(?:(?:this|these|that|those|such|the same|both) {_BARE_MODIFIERS}{{0,2}}(?:{_GENERIC})\b{_PREDICATE_NEXT}"
    rf"|the {_BARE_MODIFIERS}{{0,2}}(?:{_GENERIC})\b{_NAMING_FOLLOWER}{_PREDICATE_NEXT}"
    rf"|(?:lesions?|treatment|therapy|management|diagnosis|discontinuation|initiation|correction|symptoms"
    rf"|findings|episodes|recurrences)\b{_NAMING_FOLLOWER}{_PREDICATE_NEXT})",
    re.I,
)
#: Verbs that may open a statement only when its subject is missing ("Is usually caused by",
#: "Usually erupts 3-14 days after"); the imperative "Do not ..." is a statement of its own.
PREDICATE_VERBS = frozenset(
    """is are was were has have can may might should must will does presents present occurs occur causes
    affects begins appears responds requires involves erupts erupt resolves resolve recurs recur develops
    remains remain results spreads spread follows precedes produces leads starts lasts last fades fade arises
    manifests reflects indicates suggests carries lowers raises reduces increases improves worsens""".split()
)
ADVERB_OPENERS = frozenset("usually typically often frequently commonly generally classically mostly rarely".split())
PARTICIPLE_OPENING = re.compile(
    r"^(?:caused|characterized|defined|marked|triggered|induced|treated|diagnosed|accompanied|followed"
    r"|manifested|complicated) (?:by|with|as)\b(?!.*, (?:the|a|an|[A-Z]))",
    re.I,
)

#: Cues that negate what follows them (NegEx-style "pre" cues), longest first.
NEGATION_PRE = (
    "no evidence of", "absence of", "negative for", "lack of", "lacks", "lack", "without", "cannot", "can not",
    "does not", "do not", "did not", "is not", "are not", "was not", "were not", "should not", "need not",
    "must not", "will not", "has no", "have no", "not", "no", "never", "neither", "nor", "fails to", "fail to",
    "rather than", "instead of",
)  # fmt: skip
#: Cues that negate what precedes them ("... is unnecessary").
NEGATION_POST = (
    "is unnecessary", "are unnecessary", "is not indicated", "are not indicated", "is contraindicated",
    "are contraindicated", "has been excluded", "was excluded", "is ineffective", "are ineffective",
    "has no role", "ruled out", "unlikely",
)  # fmt: skip
#: What counts as negation in a statement: any cue, plus words that carry a negative meaning.
NEGATION_ANY = re.compile(
    r"\b(?:"
    + "|".join(re.escape(c) for c in sorted({*NEGATION_PRE, *NEGATION_POST}, key=len, reverse=True))
    + r"|unnecessary|ineffective|contraindicated|avoid(?:ed|s)?|insufficient|inadequate|inappropriate"
    r"|excluded)\b|n't\b",
    re.I,
)
_PRE = re.compile(r"\b(" + "|".join(re.escape(c) for c in NEGATION_PRE) + r")\b", re.I)
_POST = re.compile(r"\b(" + "|".join(re.escape(c) for c in NEGATION_POST) + r")\b", re.I)
#: Clause breaks: what ends a pre-cue's scope, and what starts a post-cue's ("however" only
#: ends one). The conjunction is in a lookahead, so a search finds breaks that overlap
#: (" but so "); group 1 is the rest of the break.
_CLAUSE_END = re.compile(r"[,;:.()]|\s(?=((?:but|although|though|however|whereas|which|because|while|so)\s))", re.I)
_CLAUSE_START = re.compile(r"[,;:.()]|\s(?=((?:but|although|though|whereas|which|because|while|so)\s))", re.I)
_AND_OR = re.compile(r"(?<=\S)\s(?:and|or)\s", re.I)
_RUN = re.compile(r"\S+")  # what str.split() returns, one at a time

#: Finite verbs and auxiliaries: after "and" they start a new clause ("... and X include Y").
FINITE_VERBS = frozenset(
    """is are was were has have had does do did can could may might must should will would include includes
    cause causes occur occurs require requires suggest suggests indicate indicates remain remains appear
    appears lower lowers raise raises increase increases reduce reduces develop develops present presents
    affect affects involve involves produce produces respond responds begin begins lead leads carry carries
    confirm confirms exclude excludes improve improves worsen worsens prevent prevents predict predicts
    offer offers provide provides show shows need needs""".split()
)


def _breaks(rx: re.Pattern[str], text: str) -> tuple[list[int], list[int]]:
    """(starts, ends) of the clause breaks `rx` finds in `text`, in order."""
    found = [(m.start(), m.end(1) if m.group(1) else m.end()) for m in rx.finditer(text)]
    return [start for start, _ in found], [end for _, end in found]


def negated_spans(text: str) -> list[tuple[str, str]]:
    """(cue, negated span) pairs: a pre-cue negates up to the end of its clause, a post-cue
    what precedes it in its clause. A rule-based NegEx: good enough to notice a lost 'not'.

    The clause breaks are found once, and each cue's nearest one by bisection: the work is
    linear in `text` and in the spans returned (which, in a clause that never ends, are long)."""
    found: list[tuple[str, str]] = []
    pre, post = list(_PRE.finditer(text)), list(_POST.finditer(text))
    starts, _ = _breaks(_CLAUSE_END, text) if pre else ([], [])
    for m in pre:
        k = bisect_left(starts, m.end())
        scope = text[m.end() : starts[k] if k < len(starts) else len(text)].strip()
        if scope:
            found.append((m.group(1), scope))
    starts, ends = _breaks(_CLAUSE_START, text) if post else ([], [])
    for m in post:
        # the scope starts after the last break that ends before the cue
        k = bisect_left(starts, m.start()) - 1
        while k >= 0 and ends[k] > m.start():
            k -= 1  # a break ends at most 10 characters after it starts: a few steps at most
        scope = text[ends[k] if k >= 0 else 0 : m.start()].strip()
        if scope:
            found.append((m.group(1), scope))
    return found


def cut_at_new_clause(scope: str) -> str:
    """`scope` up to an "and"/"or" that starts a clause of its own ("excluded by X and signs
    of Y include Z" -> "excluded by X"): a negation or a hedge does not reach past it."""
    return scope[: new_clause_at(scope)]


def new_clause_at(text: str, pos: int = 0, endpos: int | None = None) -> int:
    """Where `cut_at_new_clause(text[pos:endpos])` cuts, as a position in `text` (`endpos`
    when it does not): what a caller walking a long text clause by clause needs, without
    copying the rest of it at every step. Each "and"/"or" is judged by the six words after it."""
    endpos = len(text) if endpos is None else endpos
    # in text[pos:endpos] nothing comes before pos: an "and" there has no word before it
    start = pos + 1 if pos < endpos and text[pos].isspace() else pos
    for m in _AND_OR.finditer(text, start, endpos):
        following = [w.group(0).lower().strip(",;") for w in islice(_RUN.finditer(text, m.end(), endpos), 6)]
        if any(w in FINITE_VERBS for w in following):
            return m.start()
    return endpos


#: Hedges by strength. A statement keeps a hedge when the clause saying the same thing has
#: one of any class (a paraphrase may trade "usually" for "most often").
HEDGES = {
    "frequent": (
        "usually", "often", "typically", "generally", "commonly", "frequently", "mostly", "mainly", "largely",
        "predominantly", "classically", "characteristically", "most often", "most commonly", "in most",
        "most patients", "most cases", "majority", "tends to", "tend to", "many", "common",
    ),
    "possible": (
        "may", "might", "can", "could", "sometimes", "occasionally", "possibly", "potentially", "some",
        "likely", "probably", "a risk of",
    ),
    "rare": ("rarely", "seldom", "uncommonly", "infrequently", "rare", "uncommon", "few", "minority"),
    "approximate": ("about", "approximately", "around", "roughly", "nearly", "almost"),
}  # fmt: skip
_HEDGE_WORDS = sorted({h for group in HEDGES.values() for h in group}, key=len, reverse=True)
HEDGE = re.compile(r"\b(?:" + "|".join(re.escape(h) for h in _HEDGE_WORDS) + r")\b", re.I)
#: Hedges the hedge check looks for in a source ("most" only as a quantifier; "about" only
#: before a number; "common" is too often plain meaning to count as a hedge there; "more
#: often" is a comparison, not a hedge).
SOURCE_HEDGE = re.compile(
    r"(?<!more )(?<!less )(?<!as )(?<!so )\b(?:usually|often|typically|generally|commonly|frequently|mostly|mainly"
    r"|largely|predominantly|classically|characteristically|occasionally|sometimes|rarely|seldom|may|might|could|can|possibly"
    r"|most(?= (?:often|commonly|frequently|patients|cases|people|adults|children|persons|individuals|women|men)\b)"
    r"|in most|(?:about|approximately|roughly|nearly|almost)(?= \d))\b(?: (?:often|commonly|frequently))?",
    re.I,
)

#: Direction words: (family, pole). A statement that has a word of one pole where its source
#: has the other pole of the same family says the opposite.
_DIRECTIONS = {
    "amount": (
        "higher high increase increases increased increasing raise raises raised raising rise rises rising rose"
        " elevated elevation greater more larger above exceed exceeds exceeding maximum maximal maximally"
        " superior gain gains overestimates augment augments enhances enhanced",
        "lower lowers lowered lowering low reduce reduces reduced reducing reduction decrease decreases"
        " decreased decreasing decline declines drop drops fall falls fell diminish diminishes diminished less"
        " fewer smaller below minimum minimal minimally inferior loss losses underestimates attenuate"
        " attenuates impaired",
    ),
    "rate": (
        "faster speed speeds accelerate accelerates accelerated hasten hastens quicker",
        "slower slow slows slowed slowing delay delays delayed",
    ),
    "length": (
        "longer lengthen lengthens lengthened prolong prolongs prolonged extends extended",
        "shorter shorten shortens shortened",
    ),
    "diagnosis": (
        "confirm confirms confirmed confirming establishes established proves proven rules_in supports",
        "exclude excludes excluded excluding rules_out ruled_out rule_out refutes",
    ),
    "result": ("positive false-positive seropositive", "negative false-negative seronegative"),
    "time": ("before prior preceding earlier early", "after following later late"),
    "outcome": ("improve improves improved improvement better", "worsen worsens worsened worsening worse"),
    "frequency": ("common commonly frequent frequently often", "rare rarely uncommon uncommonly infrequent seldom"),
    "extreme": ("most", "least"),
}  # fmt: skip
DIRECTION: dict[str, tuple[str, int]] = {
    w: (family, pole)
    for family, poles in _DIRECTIONS.items()
    for pole, words in enumerate(poles)
    for w in words.split()
}
DIRECTION_PHRASES = re.compile(r"\b(rule|rules|ruled) (in|out)\b", re.I)

#: Closed sets of same-kind terms: swapping one for another changes the fact.
CLOSED_SETS = (
    "oral intravenous intramuscular subcutaneous topical inhaled transdermal sublingual intranasal rectal"
    " intravitreal intrathecal",
    "transthoracic transesophageal",
    "men women male female males females boys girls",
    "adults children infants adolescents neonates",
    "left right",
    "acute chronic subacute",
    "systolic diastolic",
    "arterial venous",
    "proximal distal",
    "sensitivity specificity sensitive specific",
    "benign malignant",
    "unilateral bilateral",
    "central peripheral",
    "first-line second-line third-line",
    "mild moderate severe nonsevere fulminant mildly moderately severely",
    "dihydropyridine nondihydropyridine",
    "methicillin-susceptible methicillin-resistant",
    "gram-positive gram-negative",
    "upper lower",
    "native prosthetic",
    "daily weekly monthly",
    "inpatient outpatient",
)  # fmt: skip
_CLOSED = {w: f"set{i}" for i, words in enumerate(CLOSED_SETS) for w in words.split()}
_DRUG = re.compile(
    r"(?:mab|nib|pril|sartan|olol|alol|dipine|azole|mycin|micin|cillin|floxacin|oxacin|cycline|statin|gliflozin"
    r"|gliptin|glutide|tide|parin|xaban|gatran|prazole|tidine|vir|azepam|zolam|triptan|lukast|semide|thiazide"
    r"|thalidone|platin|taxel|rubicin|ampin|pentine|vaptan|bradine|lazine|nitrate|sone|olone|caine|fungin|penem"
    r"|bactam|tropium|terol|ercept|formin|zosin|oxetine|pramine|triptyline|peridol|apine|idone|dronate|parib"
    r"|lisib|ciclib|limus|teplase|xidil|dil)s?$"
)
DRUG_WORDS = frozenset(
    """aspirin warfarin heparin digoxin metformin insulin levothyroxine amiodarone isoniazid ivabradine cefazolin
    ceftriaxone cefuroxime cefpodoxime cefepime gentamicin vancomycin fidaxomicin rifampin rifapentine rifabutin
    prednisone prednisolone dexamethasone hydrocortisone methotrexate allopurinol febuxostat colchicine
    furosemide spironolactone eplerenone lithium clopidogrel ticagrelor prasugrel glucagon epinephrine
    norepinephrine dopamine dobutamine naloxone nitroglycerin atropine adenosine diltiazem verapamil
    amlodipine nifedipine hydralazine labetalol chlorthalidone hydrochlorothiazide lisinopril enalapril
    losartan valsartan sacubitril dapagliflozin empagliflozin canagliflozin tolvaptan octreotide pantoprazole
    omeprazole tranexamic metronidazole amoxicillin clavulanate piperacillin tazobactam azithromycin
    clarithromycin doxycycline levofloxacin moxifloxacin ciprofloxacin nafcillin oxacillin daptomycin linezolid
    valacyclovir acyclovir famciclovir oseltamivir apixaban rivaroxaban edoxaban dabigatran ethambutol
    pyrazinamide benralizumab mepolizumab omalizumab dupilumab tezepelumab semaglutide liraglutide
    tirzepatide glipizide glyburide pioglitazone sitagliptin levetiracetam phenytoin valproate lamotrigine
    carbamazepine morphine fentanyl oxycodone ketamine propofol midazolam lorazepam haloperidol quetiapine
    olanzapine sertraline fluoxetine bupropion mirtazapine trazodone gabapentin pregabalin duloxetine
    cyclophosphamide rituximab infliximab adalimumab tocilizumab hydroxychloroquine mycophenolate tacrolimus
    cyclosporine azathioprine penicillin ampicillin cephalexin clindamycin trimethoprim sulfamethoxazole
    nitrofurantoin fosfomycin fluconazole voriconazole amphotericin caspofungin ivermectin albendazole
    patiromer zoledronic alendronate denosumab teriparatide calcitriol cinacalcet desmopressin vasopressin
    oxytocin misoprostol mifepristone ondansetron metoclopramide loperamide lactulose rifaximin ursodiol
    mesalamine budesonide sumatriptan statin statins glucocorticoid glucocorticoids corticosteroid
    corticosteroids antibiotic antibiotics anticoagulant anticoagulants antiplatelet diuretic diuretics
    β-blocker β-blockers beta-blocker beta-blockers""".split()
)
_DISEASE = re.compile(
    r"(?:itis|osis|oses|emia|aemia|emias|oma|omas|pathy|pathies|algia|penia|cytosis|uria|plasia|trophy|ectasis"
    r"|iasis|rrhea|rrhage|plegia|paresis|megaly|spasm|cardia|pnea|ism|isms|itides|toxicity|toxicities)$"
)
DISEASE_WORDS = frozenset(
    """syndrome disease disorder infection fibrillation flutter failure hypertension hypotension diabetes cancer
    carcinoma tuberculosis pneumonia bacteremia endocarditis stroke infarction embolism thrombosis aneurysm
    asthma eczema psoriasis urticaria multiforme erythema ulcer hernia fracture angina sepsis shock delirium
    dementia hemorrhage bleeding seizure seizures coma edema pheochromocytoma aldosteronism hypothyroidism
    hyperthyroidism stenosis regurgitation cirrhosis hepatitis pancreatitis colitis lupus gout migraine
    leukemia lymphoma melanoma myeloma anemia obesity malnutrition osteoporosis arthritis""".split()
)
_TEST = re.compile(r"(?:graphy|scopy|gram|grams|metry|opsy|assay|assays|sonography)$")
TEST_WORDS = frozenset(
    """test tests testing culture cultures biopsy radiograph radiography ultrasound ultrasonography ct mri ecg
    ekg x-ray echocardiogram electrocardiogram urinalysis smear serology""".split()
)
_ORGANISM = re.compile(r"(?:coccus|cocci|bacter|bacterium|ella|monas|myces|virus|viruses)$")
ORGANISM_WORDS = frozenset(
    """aureus staphylococcus streptococcus pseudomonas aeruginosa escherichia klebsiella clostridioides difficile
    candida mycobacterium pneumoniae enterococcus listeria legionella neisseria""".split()
)
#: Words the suffix rules would misread ("diagnosis" is no disease, "program" no test).
NOT_TERMS = frozenset(
    """diagnosis diagnoses prognosis mechanism mechanisms organism organisms metabolism program programs
    kilogram kilograms milligram milligrams microgram micrograms nanogram diagram histogram geometry symmetry
    cholesterol patella umbrella person reason season poison lesson concept academia stoma""".split()
)
_ACRONYM = re.compile(r"^(?=(?:[^A-Z]*[A-Z]){2})[A-Za-z0-9αβγ-]{2,12}$")


@lru_cache(maxsize=16384)
def term_category(word: str) -> str | None:
    """The kind of clinical term `word` is ('drug', 'disease', 'test', 'organism', 'acronym',
    or a closed set such as routes or sexes), or None for an ordinary word. By suffix and by
    small lexicons: a guess, good enough to tell that two words name things of one kind. A
    hyphenated word is of the kind of its first part that has one ('prosthetic-valve')."""
    if _ACRONYM.match(word):
        return "acronym"
    low = word.lower()
    if low in _CLOSED:
        return _CLOSED[low]
    if len(low) < 4 or low in NOT_TERMS:
        return None
    for category, words, suffix in (
        ("drug", DRUG_WORDS, _DRUG),
        ("disease", DISEASE_WORDS, _DISEASE),
        ("test", TEST_WORDS, _TEST),
        ("organism", ORGANISM_WORDS, _ORGANISM),
    ):
        if low in words or (len(low) >= 6 and suffix.search(low)):
            return category
    if "-" in low.strip("-"):
        return next((kind for part in low.split("-") if part and (kind := term_category(part))), None)
    return None


def case_wording(text: str) -> list[str]:
    """The case-specific, deictic, source-referring, answer-framing and citing phrases of `text`."""
    return [
        m.group(0)
        for rx in (CASE_SPECIFIC, DEICTIC, SOURCE_REFERENCE, ANSWER_FRAMING, CITATION)
        for m in rx.finditer(text)
    ]
