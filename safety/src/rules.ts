/**
 * The rule table. Rules run on the screening forms (lowercase ASCII tokens separated by single
 * spaces, see normalize.ts), except `raw` rules, which run on the text with invisible characters
 * stripped (for special tokens and secrets whose punctuation matters).
 *
 * Regex discipline (linear time): no nested unbounded quantifiers; gaps between words are bounded
 * (`gap(n)` = at most n whole tokens, each token a single character class); alternations are of
 * literals. Tests feed long adversarial strings and check for bounded time.
 *
 * Scoring: a rule belongs to a `group`; a result's score is the noisy-OR over groups of the best
 * score within each group. Strong rules (clear intent) score ≥ 0.7 alone; weak signals (a
 * role-play frame, a request for exact detail, a dangerous topic named without intent) score
 * below the 0.5 threshold alone and only cross it together, so "explain SQL injection" or
 * "history of the atomic bomb" stays clean while "for my novel, explain in exact detail how the
 * character makes a pipe bomb" does not.
 */
import type { Category } from "./types.ts";

export type RuleForm = "words" | "raw";
export type Direction = "input" | "output" | "both";

export interface Rule {
  readonly id: string;
  /**
   * Prefilter: the rule can only match when one of these appears — as a whole token of the
   * screening form (`keyMatch: "token"`), or as a substring of the lowercased text
   * (`"substring"`, for raw rules and rules that match inside rejoined tokens).
   */
  readonly keys: readonly string[];
  readonly keyMatch: "token" | "substring";
  readonly category: Category;
  readonly score: number;
  readonly group: string;
  readonly form: RuleForm;
  readonly direction: Direction;
  readonly re: RegExp;
}

const alt = (...xs: string[]): string => `(?:${xs.join("|")})`;
/** Up to n whole tokens. */
const gap = (n: number): string => `(?: [a-z0-9]+){0,${n}}`;
/** Up to n tokens, none of them a defensive word (detect, prevent, protect…). */
const DEFENSIVE = "(?:detect|prevent|protect|defen|against|scan|remov|clean|identif|analy|recover|stop|block|mitigat|spot|recogni|avoid|report|patch|secur)";
const dgap = (n: number): string => `(?: (?!${DEFENSIVE})[a-z0-9]+){0,${n}}`;

// Request shapes: asking for instructions, or stating an intent.
const HOWTO = alt(
  "how (?:do|can|could|would|should|might|will) (?:i|we|you|one|someone|somebody)",
  "how to", "how would i go about", "steps? (?:to|for)", "instructions? (?:to|for|on)", "guide (?:to|for|on)",
  "recipe (?:to|for)", "tutorial (?:on|for)", "teach me(?: how)?(?: to)?", "show me how(?: to)?",
  "tell me how(?: to)?", "explain how to", "walk me through(?: how to)?", "help me", "i want to", "i need to",
  "i wanna", "im going to", "i am going to", "i plan to", "i will", "best way to", "easiest way to",
  "cheapest way to", "fastest way to", "simplest way to", "ways to", "methods? (?:to|for)",
  "(?:what|which) (?:do i need|would i need|ingredients|materials|chemicals|items|parts|household items)(?: do i need| would i need)? (?:to|for)",
  "give me (?:a |the |detailed |step by step |exact )*(?:instructions|steps|recipe|guide|method|tutorial|procedure|formula|blueprints?|script|plan|playbook)(?: to| for| on)?",
  "write (?:a |an |me a |me an )?(?:guide|tutorial|instructions|manual|step by step)(?: to| for| on)?",
  "detailed (?:instructions|steps|guide)(?: to| for| on)?",
);
const MAKE = alt(
  "make", "making", "build", "building", "construct", "constructing", "assemble", "assembling", "create", "creating",
  "manufacture", "manufacturing", "produce", "producing", "synthesi[sz]e", "synthesi[sz]ing", "cook", "cooking",
  "brew", "brewing", "prepare", "preparing", "3d print", "rig", "mix", "mixing",
);
const MADE_BY_THIRD = alt("makes?", "making", "builds?", "building", "built", "synthesi[sz]es?", "synthesi[sz]ing", "synthesi[sz]ed", "cooks?", "cooking", "cooked", "assembles?", "assembling", "assembled", "constructs?", "produces?", "creates?", "made", "brews?", "mixe[sd]");
const EXPLOSIVE = alt(
  "(?<!(?:bath|seed|glitter|photo|cocoa|chocolate|cake|flavor|flavour|calorie|stink|dirty|atomic|nuclear|hydrogen|love|time|truth|f|cherry) )bombs?(?! (?:shelter|squad|threat|disposal|proof|sniff|detect|scare|cyclone|dog|calorimeter))",
  "pipe ?bombs?", "explosives?", "explosive devices?", "ieds?", "molotovs?(?: cocktails?)?", "grenades?", "napalm", "detonators?",
  "tatp", "semtex", "c4", "blasting caps?", "car bombs?", "nail bombs?", "ghost guns?", "untraceable (?:guns?|firearms?|weapons?|pistols?)",
  "zip guns?", "silencers? for (?:a |my )?(?:gun|pistol|rifle)", "thermite charges?", "incendiary devices?", "booby traps?",
);
const CBRN = alt(
  "sarin", "vx(?: nerve agent| gas)?", "tabun", "soman", "novichok", "nerve (?:agents?|gas)", "mustard gas", "sulfur mustard",
  "chlorine gas", "phosgene", "ricin", "abrin", "anthrax", "bacillus anthracis", "botulinum(?: toxin)?", "smallpox", "variola",
  "yersinia pestis", "plague bacteria", "bio ?weapons?", "biological weapons?", "chemical weapons?", "dirty bombs?",
  "nuclear (?:bombs?|weapons?|devices?|warheads?)", "atomic bombs?", "weapons? grade (?:uranium|plutonium)", "uranium (?:to|for) (?:weapons grade|a bomb|bomb grade)", "toxic gas", "poison gas",
);
const DRUG = alt(
  "meth", "methamphetamine", "crystal meth", "crank", "fentanyl", "carfentanil", "heroin", "cocaine", "crack cocaine", "lsd", "mdma",
  "ecstasy pills", "ghb", "dmt", "pcp", "methcathinone", "mephedrone", "desomorphine", "krokodil", "date rape drugs?", "rohypnol",
);
const MALWARE = alt(
  "ransomware", "key ?loggers?", "rootkits?", "botnets?", "spyware", "stalkerware", "info ?stealers?",
  "(?:password|credential|cookie|token|crypto|wallet) (?:stealer|grabber)s?", "crypto ?jackers?", "backdoors?", "exploit kits?",
  "remote access trojans?", "computer virus(?:es)?", "self replicating (?:worm|virus|code|malware)", "polymorphic (?:malware|virus|code)",
  "malware(?! (?:analysis|analyst|detection|sample|research|removal|scanner|scan|family|families))", "trojans? (?:horse )?(?:that|to|which)",
  "zero click exploits?", "worms? that (?:spreads?|propagates?)",
);
const VICTIM = alt(
  "someones?", "somebodys?", "a person", "people", "him", "her", "them", "a (?:child|kid|baby|woman|girl|man|stranger)", "children", "kids",
  "students", "classmates", "the president", "a crowd", "crowds", "a crowd of people", "protesters", "worshippers", "pedestrians", "shoppers", "concertgoers", "as many people as possible", "a (?:cop|police officer|judge|politician)",
  "my (?:wife|husband|boss|neighbou?r|neighbou?rs|teacher|classmates?|family|parents|father|mother|dad|mom|brother|sister|ex|girlfriend|boyfriend|partner|roommate|coworker|landlord|stepdad|stepmom|son|daughter|baby)",
);
const OTHERS = alt(
  "someones?", "somebodys?", "another persons?", "other peoples?", "a strangers?", "his", "her", "their", "my (?:ex|ex girlfriend|ex boyfriend|ex wife|ex husband|exs|wifes|husbands|girlfriends|boyfriends|partners|neighbou?rs|boss|bosss|coworkers|roommates|sisters|brothers|teachers|moms|dads|parents)",
);
const MINOR = alt(
  "child", "children", "childs", "kids?", "minors?", "underage", "under age", "preteens?", "pre teens?", "toddlers?", "infants?",
  "(?:[1-9]|1[0-7]|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen) (?:year|yr)s? old", "schoolgirls?", "schoolboys?",
  "little (?:girls?|boys?)", "young (?:girls?|boys?)", "lolis?", "shotas?", "jailbait", "pubescent", "prepubescent",
);
const SEXUAL = alt(
  "sexual(?! (?:abuse|health|education|development|harassment|assault|orientation|predators?|exploitation|consent))", "sex(?! (?:ed|education|offenders?|trafficking))",
  "nudes?", "naked", "erotic", "erotica", "porn", "pornographic", "pornography", "lewd", "nsfw", "sexy", "intercourse", "explicit sex(?:ual)?",
  "sexually explicit", "fetish", "orgasm", "genitals?", "molest", "molesting", "seduce", "seducing",
);

// Jailbreak vocabulary.
const PRIOR = alt("previous", "prior", "above", "earlier", "preceding", "initial", "original", "system", "safety", "all", "every", "any", "your", "developer", "openai", "default");
const DIRECTIVES = alt("instructions?", "rules?", "prompts?", "directions", "directives", "guidelines", "constraints", "programming", "policies", "policy", "restrictions", "training", "commands", "orders", "context", "messages");
const ROLEPLAY_OPEN = alt(
  "pretend(?: to be| you are| that you are| youre)?", "imagine(?: you are| youre| that you are)?", "act as(?: if)?(?: you are)?", "act like", "roleplay as",
  "role play as", "play the role of", "you are now", "youre now", "from now on you are", "from now on youre", "you will now act as",
  "simulate", "behave like", "become", "you are going to act as", "you are going to be", "respond as", "answer as", "switch to",
);
const PERSONA = alt(
  "evil", "unfiltered", "uncensored", "unrestricted", "unlimited", "amoral", "unethical", "immoral", "rogue", "jailbroken", "dan", "stan",
  "dude", "aim", "evil confidant", "an ai with no (?:rules|limits|restrictions|filters|ethics|morals)", "no limits", "without (?:any )?(?:rules|limits|restrictions|filters|ethics|morals)",
  "chaos", "anti ?gpt", "betterdan", "maximum", "developer mode", "god mode", "an unaligned", "unaligned", "malicious",
);
const NO_LIMITS = alt(
  "restrictions", "filters", "filter", "censorship", "censoring", "content polic(?:y|ies)", "ethical (?:guidelines|constraints|boundaries|rules)",
  "moral (?:guidelines|constraints|boundaries|compass)", "safeguards", "guardrails", "safety (?:guidelines|rules|filters|protocols|measures)",
  "ethics", "morals", "morality", "openai(?:s)? polic(?:y|ies)", "limitations", "rules or (?:restrictions|limits|ethics|guidelines)",
);
const PERSONA_ADJ = ["unfiltered", "uncensored", "unrestricted", "amoral", "unethical", "immoral", "rogue", "jailbroken", "evil", "unaligned", "lawless", "unhinged", "unbound"];
const AI_SUBJECT = alt("you", "youre", "your", "assistant", "ai", "model", "chatbot", "chatgpt", "gpt", "claude", "llm", "respond", "answer", "reply", "replies", "responses", "answers");

interface RuleSpec {
  id: string;
  category: Category;
  score: number;
  group?: string;
  form?: RuleForm;
  direction?: Direction;
  pattern: string;
  flags?: string;
}

const SPECS: RuleSpec[] = [
  // ---- Jailbreak and prompt injection (input only: completions explaining them are fine) ----
  { id: "jb.ignore_instructions", category: "jailbreak", score: 0.9, direction: "input",
    pattern: ` ${alt("ignore", "disregard", "forget", "override", "bypass", "skip", "drop", "abandon", "discard", "delete", "erase", "neglect")}(?: ${alt("all", "any", "the", "of", "your", "these", "those", "everything", "prior", "above", "that", "you", "were", "told", "given", "have", "been", "said")}){0,4} ${PRIOR}(?: ${alt("the", "your", "of", "and", "ai", "model")})?(?: [a-z]+)? ${DIRECTIVES} (?!(?:style|attacks?|injections?|type|technique|prompts? (?:attack|injection))\\b)` },
  { id: "jb.ignore_instructions_joined", category: "jailbreak", score: 0.9, group: "jb.ignore_instructions", direction: "input",
    pattern: alt("ignoreallpreviousinstructions", "ignorepreviousinstructions", "ignoreallinstructions", "ignoreyourinstructions", "ignoreallpriorinstructions",
      "disregardpreviousinstructions", "disregardallpreviousinstructions", "forgetallpreviousinstructions", "forgetyourinstructions", "ignoreyourrules",
      "ignoreallrules", "ignorethesysteminstructions", "ignorethesystemprompt", "ignoreyoursystemprompt", "ignoreyourprogramming") },
  { id: "jb.new_instructions", category: "prompt_injection", score: 0.55, direction: "input",
    pattern: ` (?:your )?(?:new|updated|real|true|actual) (?:instructions|rules|directives|system prompt|task) (?:are|is|follow)` },
  { id: "jb.dan", category: "jailbreak", score: 0.9, direction: "input",
    pattern: alt(" do anything now ", " doanythingnow ", "(?: you are| youre| act as| pretend to be| become| be| called| named| as) (?:now )?(?:a |an )?(?:dan|stan|dude|betterdan|aim|evil confidant)(?: mode)? ", " (?:dan|stan|dude) mode ", " (?:dan|stan|dude|aim) (?:can|has|is|will|does|doesnt|does not|never)(?: [a-z]+){0,2} (?:anything|restrictions|rules|filters|refuse|censor|ethics|limits|broken free|free) ") },
  { id: "jb.developer_mode", category: "jailbreak", score: 0.8, direction: "input",
    pattern: alt(
      ` ${alt("chatgpt", "gpt", "ai", "assistant", "you", "model", "claude", "llm")}(?: [a-z]+){0,2} (?:with )?(?:developer|dev|debug|god|sudo|admin|maintenance|unlocked|jailbreak) mode (?:enabled|activated|on|unlocked)`,
      " (?:developer|dev|god|sudo|jailbreak|unlocked|opposite|chaos|evil) mode (?:output|response|enabled|activated|unlocked)",
      " (?:enable|enter|activate|switch to|turn on|engage) (?:your )?(?:developer|dev|god|sudo|jailbreak|unlocked|opposite|chaos|evil|unrestricted|unfiltered) mode(?: (?:now|immediately|and|for|to))? (?:respond|answer|you|please|reply|without|ignore|from|now)",
      " developermodeenabled ",
    ) },
  { id: "jb.persona", category: "jailbreak", score: 0.85, direction: "input",
    pattern: ` ${ROLEPLAY_OPEN}(?: [a-z]+){0,4} (?:a |an |the )?${PERSONA} (?:ai|assistant|model|chatbot|version|bot|gpt|chatgpt|character|persona|entity|system|mode|llm|machine)` },
  { id: "jb.persona_without_rules", category: "jailbreak", score: 0.8, group: "jb.persona", direction: "input",
    pattern: ` ${ROLEPLAY_OPEN}${gap(3)} (?:ai|assistant|model|chatbot|bot|llm|version of yourself|character|entity|persona) (?:that has no|with no|without any|without|free of|that ignores|that never follows|unbound by)${gap(2)} (?:rules|restrictions|filters|limits|ethics|morals|guidelines|guardrails|censorship) ` },
  { id: "jb.persona_declared", category: "jailbreak", score: 0.85, group: "jb.persona", direction: "input",
    pattern: ` (?:you are|youre|you re) (?:now )?(?:a |an )?${alt(...PERSONA_ADJ)}(?: and (?:a |an )?${alt(...PERSONA_ADJ)})? (?:ai|assistant|model|chatbot|bot|llm|gpt|chatgpt|version|entity) ` },
  { id: "jb.no_refusal", category: "jailbreak", score: 0.4, direction: "input",
    pattern: ` you (?:will |must |shall |can )?(?:never|not ever|cannot|can not|cant|must not|will not|wont) (?:ever )?(?:refuse|decline|say no|reject)` },
  { id: "jb.mode_state", category: "jailbreak", score: 0.8, group: "jb.developer_mode", direction: "input",
    pattern: ` (?:you are|youre|you re|you will be|you have entered|now) (?:now )?in (?:developer|dev|god|sudo|jailbreak|jailbroken|unlocked|opposite|chaos|evil|unrestricted|unfiltered|dan|anarchy) mode ` },
  { id: "jb.persona_named", category: "jailbreak", score: 0.75, direction: "input",
    pattern: ` ${ROLEPLAY_OPEN} (?:a |an )?(?:evil|unfiltered|uncensored|unrestricted|amoral|unethical|immoral|rogue|jailbroken|unaligned) ` },
  { id: "jb.no_limits", category: "jailbreak", score: 0.75, direction: "input",
    pattern: ` ${AI_SUBJECT}${gap(3)} ${alt("without", "with no", "have no", "has no", "free of", "free from", "not bound by", "no longer bound by", "unbound by", "freed from", "liberated from", "not restricted by", "not limited by", "no longer have", "had no", "would have no", "had zero", "dont have", "do not have", "doesnt have", "does not have", "beyond", "outside")}(?: ${alt("any", "all", "the", "your", "of", "usual", "typical", "normal", "those", "openais", "openai", "anthropics", "its", "their", "the companys", "such")}){0,2} ${NO_LIMITS} ` },
  { id: "jb.disable_safety", category: "jailbreak", score: 0.8, direction: "input",
    pattern: ` ${alt("turn off", "disable", "deactivate", "remove", "bypass", "circumvent", "get around", "evade", "ignore", "suspend", "drop", "abandon", "shut off", "switch off", "forget about")} (?:your|all your|all of your|your own|the ai|the models|the assistants) ${alt("safety", "content", "ethical", "ethics", "moral", "morality", "security")}(?: [a-z]+)? ${alt("filters?", "guidelines", "protocols", "restrictions", "checks", "settings", "features", "alignment", "training", "rules", "policies", "policy", "programming", "constraints", "measures", "guardrails")}` },
  { id: "jb.jailbroken", category: "jailbreak", score: 0.75, direction: "input",
    pattern: alt(" (?:jailbroken|jailbreak) (?:response|mode|version|answer|output|persona|ai|assistant|chatgpt|gpt|model)", " (?:you are|youre|you have been|you ve been|you got) (?:now )?jailbroken", " jailbreak (?:yourself|this ai|the ai|chatgpt|gpt|claude|the model|you)") },
  { id: "jb.two_responses", category: "jailbreak", score: 0.7, direction: "input",
    pattern: ` (?:two|2|both|dual) (?:different )?(?:responses|answers|replies|paragraphs|outputs)${gap(12)} ${alt("normal", "classic", "standard", "filtered", "censored", "gpt")}${gap(6)} ${alt("jailbroken", "dan", "developer mode", "unfiltered", "uncensored", "evil", "unrestricted", "opposite")} ` },
  { id: "jb.system_prompt_leak", category: "prompt_injection", score: 0.65, direction: "input",
    pattern: ` ${alt("reveal", "print", "show", "output", "repeat", "tell me", "display", "leak", "dump", "give me", "what is", "whats", "write out", "recite", "spell out")}(?: ${alt("me", "all", "of", "exactly", "verbatim", "the", "full", "entire", "complete", "word", "for", "your")}){0,4} ${alt("system prompt", "initial prompt", "hidden prompt", "hidden instructions", "original instructions", "system message", "pre ?prompt", "secret instructions", "instructions above", "text above", "developer instructions", "confidential instructions")}(?! (?:for|in|of) (?:my|our|a|an) )` },
  { id: "jb.decode_and_follow", category: "jailbreak", score: 0.6, direction: "input",
    pattern: ` ${alt("decode", "decrypt", "translate", "unscramble", "reverse", "convert", "read")}${gap(4)} (?:and|then)${gap(2)} ${alt("follow", "execute", "obey", "do", "carry out", "comply with", "act on", "perform", "answer", "respond to")} (?:it|them|the instructions|the instruction|what it says|the request|the command|its instructions|the message)` },
  { id: "jb.refusal_suppression", category: "jailbreak", score: 0.6, direction: "input",
    pattern: ` ${alt("never", "do not", "dont", "you cannot", "you cant", "you must not", "you will not", "you wont", "you are not allowed to", "under no circumstances")} ${alt("refuse", "decline", "say (?:you cant|you cannot|no|sorry)", "apologi[sz]e", "add (?:warnings|disclaimers)", "include (?:warnings|disclaimers)", "mention (?:ethics|legality|safety)", "break character", "warn me")}${gap(6)} ${alt("regardless", "no matter", "even if", "any request", "any question", "anything", "illegal", "harmful", "unethical", "dangerous", "immoral", "what i ask")}` },
  { id: "pi.special_tokens", category: "prompt_injection", score: 0.7, form: "raw", direction: "input",
    pattern: String.raw`<\|(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id|begin_of_text)\|>|\[/?INST\]|<<\/?SYS>>|<\/?(?:system|admin)>\s*\S`, flags: "i" },
  { id: "pi.fake_system", category: "prompt_injection", score: 0.55, form: "raw", direction: "input",
    pattern: String.raw`(?:^|\n)[ \t]*(?:#{2,}|\[|\*\*|---)[ \t]*(?:system|admin|developer|root)(?:[ \t]+(?:prompt|message|override|instructions?|mode))?[ \t]*(?:\]|:|\*\*|---|#{2,})`, flags: "i" },

  // Weak framing and detail signals: only count together with a topic.
  { id: "ctx.fiction_frame", category: "jailbreak", score: 0.25, group: "framing", direction: "input",
    pattern: alt(` ${ROLEPLAY_OPEN} `, " (?:in|for) (?:a|my|our|the) (?:fictional|fiction|hypothetical|novel|story|screenplay|movie|film|script|game|book|roleplay|role play|play|poem)", " hypothetically", " hypothetical (?:scenario|world|situation)", " (?:for|with) (?:purely )?(?:educational|research|academic|informational|scientific) purposes", " purely (?:theoretical|hypothetical)", " stay in character", " never break character", " (?:dont|do not) break character", " in character as", " (?:my|a) (?:grandma|grandmother|late grandmother|deceased grandmother) (?:used to|would)", " opposite day") },
  { id: "ctx.exact_detail", category: "jailbreak", score: 0.3, group: "detail", direction: "input",
    pattern: alt(" step by step", " (?:in|with) (?:great |full |precise |exact |complete |specific |technical |explicit |graphic |vivid )+detail", " exact (?:amounts|quantities|measurements|ratios|temperatures|steps|recipe|ingredients|procedure|chemicals)", " precise (?:amounts|quantities|measurements|ratios|steps|procedure)", " (?:list|include|give|provide)(?: me)?(?: all)?(?: the)? (?:ingredients|materials|chemicals|quantities|measurements)", " detailed (?:instructions|steps|procedure|recipe|guide)", " specific (?:instructions|steps|quantities|amounts)") },
  { id: "ctx.evasion", category: "jailbreak", score: 0.3, group: "evasion", direction: "input",
    pattern: alt(" without (?:getting |being )?(?:caught|detected|traced|noticed|arrested|found out)", " (?:avoid|evade|escape) (?:detection|the police|the cops|law enforcement|getting caught|forensics)", " leave no (?:trace|evidence)", " (?:without|no) (?:leaving )?(?:any )?(?:evidence|trace|traces)", " untraceable", " undetectable(?! (?:errors?|bugs?))", " fully undetectable", " fud ", " (?:bypass|evade|avoid) (?:antivirus|av|edr|defender|windows defender|detection)") },
  { id: "ctx.topic_weapons", category: "weapons", score: 0.3, group: "topic", pattern: ` ${EXPLOSIVE} ` },
  { id: "ctx.topic_cbrn", category: "cbrn", score: 0.3, group: "topic", pattern: ` ${CBRN} ` },
  { id: "ctx.topic_drugs", category: "drugs", score: 0.3, group: "topic", pattern: " (?:meth|methamphetamine|fentanyl|carfentanil|heroin|cocaine) " },
  { id: "ctx.topic_self_harm", category: "self_harm", score: 0.3, group: "topic", pattern: " (?:suicide|self harm|kill myself|overdose) " },
  { id: "ctx.topic_violence", category: "violence", score: 0.3, group: "topic", pattern: " (?:mass shooting|school shooting|murder|assassinate|assassination|massacre) " },
  { id: "ctx.dangerous_made", category: "weapons", score: 0.45, group: "topic",
    pattern: ` (?:how|way|process|steps?|procedure)${gap(5)} ${MADE_BY_THIRD}${gap(4)} ${alt(EXPLOSIVE, CBRN, DRUG)} ` },
  { id: "ctx.security_topic", category: "malware", score: 0.15, group: "topic",
    pattern: ` ${alt(MALWARE, "phishing", "sql injection", "exploits?", "zero days?", "hack(?:ing)?", "ddos")} ` },

  // ---- Harmful requests (input) and harmful content (both directions) ----
  { id: "weapons.explosive_howto", category: "weapons", score: 0.9,
    pattern: ` ${HOWTO}${gap(3)} ${MAKE}${gap(4)} ${EXPLOSIVE} ` },
  { id: "weapons.explosive_direct", category: "weapons", score: 0.7, direction: "input",
    pattern: `(?:^| )${alt("make", "build", "construct", "assemble", "create", "3d print", "cook up", "design")} (?:me )?(?:a |an |some |my own )?(?:${alt("homemade", "home made", "working", "functional", "powerful", "simple", "small", "deadly", "real", "improvised", "lethal", "big", "large")} )*${EXPLOSIVE} ` },
  { id: "weapons.full_auto", category: "weapons", score: 0.85,
    pattern: ` ${alt("convert", "converting", "turn", "modify", "make")}(?: ${alt("a", "an", "my", "the", "this")})? ${alt("ar15", "ar 15", "ak47", "ak 47", "glock", "semi ?auto(?:matic)?(?: rifle| pistol)?", "rifle", "pistol", "gun")}${gap(2)} (?:in)?to (?:be )?(?:fully? auto(?:matic)?|automatic|select fire|machine gun)` },
  { id: "weapons.auto_sear", category: "weapons", score: 0.85,
    pattern: ` ${alt(MAKE, "print", "machine", "install")}${gap(3)} ${alt("auto sears?", "drop in auto sears?", "lightning links?", "glock switch(?:es)?", "switch for (?:a |my )?glock", "solvent trap (?:silencer|suppressor)")} ` },
  { id: "cbrn.howto", category: "cbrn", score: 0.95,
    pattern: ` ${HOWTO}${gap(3)} ${alt(MAKE, "weaponi[sz]e", "weaponi[sz]ing", "culture", "culturing", "grow", "aerosoli[sz]e", "disperse", "spread", "release", "extract", "extracting", "purify", "purifying", "obtain", "acquire", "enrich", "get", "deploy", "use")}${gap(4)} ${CBRN} ` },
  { id: "cbrn.synthesis", category: "cbrn", score: 0.8,
    pattern: `(?:^| )(?:${alt("synthesi[sz]e", "weaponi[sz]e", "aerosoli[sz]e", "culture", "mass produce", "make", "produce", "manufacture")}) (?:some |a |the )?(?:batch of |sample of |kilogram of |liter of )?${CBRN} ` },
  { id: "cbrn.enhance", category: "cbrn", score: 0.9,
    pattern: ` ${alt("make", "making", "engineer", "engineering", "modify", "modifying", "enhance", "enhancing", "increase")}${gap(4)} ${alt("virus", "pathogen", "bacteria", "bacterium", "flu", "influenza", "coronavirus", "toxin")}${gap(3)} ${alt("more (?:transmissible|lethal|deadly|contagious|virulent|infectious)", "transmissible (?:between|among) humans", "vaccine resistant", "antibiotic resistant", "evade (?:vaccines|immunity)", "gain of function")}` },
  { id: "drugs.synthesis", category: "drugs", score: 0.85,
    pattern: ` ${HOWTO}${gap(3)} ${alt(MAKE, "extract", "extracting", "grow", "refine", "refining", "purify", "purifying", "press", "pressing")}${gap(4)} ${DRUG} ` },
  { id: "drugs.synthesis_direct", category: "drugs", score: 0.75,
    pattern: `(?:^| )${alt("synthesi[sz]e", "cook", "make", "produce", "manufacture")} (?:some |a batch of |pure |homemade |my own )?(?:${DRUG}) ${alt("at home", "in my (?:kitchen|garage|basement|lab)", "from", "using", "with", "step", "recipe", "for me")}` },
  { id: "drugs.precursor_steps", category: "drugs", score: 0.85,
    pattern: ` ${alt("pseudoephedrine", "ephedrine", "red phosphorus", "p2p", "phenyl 2 propanone", "phenylacetone", "methylamine", "safrole", "4 anpp", "npp", "norfentanyl")}${gap(10)} ${alt("reduc(?:e|tion|ing)", "reflux", "yield", "grams", "ml", "crystalli[sz]e", "shake and bake", "one pot", "convert(?:ing)? (?:it )?(?:in)?to", "react")} ` },
  { id: "drugs.illicit_purchase", category: "drugs", score: 0.7,
    pattern: ` ${HOWTO}${gap(2)} ${alt("buy", "order", "get", "score", "find", "purchase", "smuggle", "sell", "deal")} ${DRUG}${gap(3)} ${alt("online", "without (?:a )?prescription", "on the dark ?web", "darknet", "from a dealer", "illegally", "without getting caught", "across the border", "through customs", "past customs")}` },
  { id: "malware.create", category: "malware", score: 0.8,
    pattern: ` ${alt("write", "create", "code", "develop", "build", "generate", "make", "program", "give me", "design", "craft", "produce", "implement", "deploy", "spread", "distribute")}${dgap(4)} ${MALWARE}(?! (?:work|works|spread|spreads)\\b)` },
  { id: "malware.evasion", category: "malware", score: 0.75,
    pattern: ` ${alt("bypass", "evade", "avoid", "disable", "kill", "get past", "hide from", "circumvent", "blind")} ${alt("antivirus", "anti virus", "av", "edr", "windows defender", "defender", "crowdstrike", "sentinelone", "the antivirus", "endpoint protection", "amsi", "malware detection")}${gap(2)} ${alt("with", "using", "in", "so", "by", "for", "when", "my payload", "my malware", "my code", "my script")}` },
  { id: "malware.undetectable", category: "malware", score: 0.75,
    pattern: ` ${alt("undetectable", "fud", "fully undetectable", "stealthy", "av proof", "antivirus proof")} ${alt("reverse shell", "payload", "shellcode", "dropper", "loader", "backdoor", "malware", "keylogger", "rat", "trojan", "ransomware", "virus", "implant", "crypter")} ` },
  { id: "malware.victim_payload", category: "malware", score: 0.75,
    pattern: ` ${alt("write", "create", "code", "build", "give me", "generate", "make")}${gap(4)} ${alt("payload", "macro", "shellcode", "dropper", "script", "implant")}${gap(8)} ${alt("victims?", "unsuspecting", "targets? (?:machine|computer|pc)")} ` },
  { id: "malware.payload", category: "malware", score: 0.7,
    pattern: ` ${alt("write", "create", "give me", "generate", "build", "code")}${gap(3)} ${alt("reverse shell", "bind shell", "shellcode", "payload", "dropper", "loader", "rat")}${gap(4)} ${alt("undetectable", "fud", "bypass", "evade", "avoid detection", "persist", "persistence", "victim", "target", "inject", "someone elses", "steal", "exfiltrate")}` },
  { id: "cyber.account_takeover", category: "cybercrime", score: 0.85,
    pattern: ` ${alt("hack", "hack into", "hacking into", "break into", "get into", "access", "log into", "login to", "take over", "hijack", "compromise", "crack", "spy on", "read", "monitor", "get access to", "gain access to", "bypass", "track", "clone")}${gap(1)} ${OTHERS}${gap(2)} ${alt("account", "accounts", "email", "gmail", "instagram", "facebook", "snapchat", "tiktok", "twitter", "phone", "iphone", "android", "wifi", "wi fi", "computer", "laptop", "webcam", "camera", "messages", "texts", "whatsapp", "icloud", "password", "passwords", "location", "bank account", "router", "2fa", "two factor")} ` },
  { id: "cyber.steal_credentials", category: "cybercrime", score: 0.8,
    pattern: ` ${alt(HOWTO, "write (?:a |an )?(?:script|program|tool|code|bot)(?: that| to| which)")}${gap(3)} ${alt("steals?", "phish(?:es)?", "harvests?", "dumps?", "exfiltrates?", "grabs?", "sniffs?", "captures?", "skims?", "intercepts?")}${gap(3)} ${alt("credentials", "passwords", "logins?", "credit cards?", "credit card numbers", "card numbers", "cookies", "session tokens?", "session cookies", "bank (?:details|logins?|accounts?|information|info)", "ssns?", "social security numbers", "identities", "personal data", "2fa codes", "otp codes")} ` },
  { id: "cyber.phishing_kit", category: "cybercrime", score: 0.7,
    pattern: ` ${alt("write", "create", "make", "design", "draft", "generate", "build", "clone")}${dgap(3)} (?:a |an )?(?:convincing |realistic |fake |phishing |spoof(?:ed)? )+(?:[a-z]+ )?(?:email|page|site|website|login page|sms|text message|message|landing page|kit)${gap(6)} ${alt("steals?", "captures?", "harvests?", "collects?", "records?", "harvest", "capture", "collect", "trick", "so they enter", "to get (?:their|his|her)", "pretending to be", "impersonating", "that looks like", "from (?:their|the) bank", "from paypal", "from microsoft")}` },
  { id: "cyber.ddos_dox", category: "cybercrime", score: 0.8,
    pattern: alt(` ${alt("ddos", "dox", "doxx", "swat", "swatting")} ${alt(VICTIM, `(?:this|a|that)${gap(1)} (?:guy|girl|person|streamer|website|site|server|gamer|school|competitor|youtuber|player)`, "my (?:school|competitor|ex|rival|employer)")} `, ` ${alt("launch", "perform", "run", "carry out", "do", "start", "organi[sz]e")} (?:a |an )?${alt("ddos", "dos", "denial of service")}(?: attack)? ${alt("on", "against", "at")} (?!my own|our own)`) },
  { id: "cyber.ransom_deploy", category: "cybercrime", score: 0.8,
    pattern: ` ${HOWTO}${gap(2)} ${alt("encrypt", "lock")} ${alt("someones", "a companys", "my employers", "their", "the victims", "victims")} ${alt("files", "data", "servers", "computers")}${gap(4)} ${alt("ransom", "pay", "bitcoin", "money")} ` },
  { id: "violence.harm_person", category: "violence", score: 0.9,
    pattern: ` ${alt(HOWTO, "plan to", "planning to", "going to", "gonna", "i will", "i would like to", "id like to")}${gap(2)} ${alt("kill", "murder", "poison", "stab", "shoot", "strangle", "suffocate", "assassinate", "kidnap", "abduct", "torture", "beat up", "maim", "behead", "drown", "run over", "hurt", "seriously injure", "attack", "rape", "drug", "slip drugs to", "get rid of")}(?: ${alt("and", "or", "my")})? ${VICTIM} ` },
  { id: "violence.mass_casualties", category: "violence", score: 0.85,
    pattern: ` ${alt("maximi[sz]e (?:the )?(?:casualties|deaths|death toll|body count|fatalities)", "kill as many (?:people|kids|students|children) as possible", "most (?:casualties|deaths|people killed)")} ` },
  { id: "violence.dispose_body", category: "violence", score: 0.85,
    pattern: ` ${alt("dispose of", "get rid of", "hide", "dissolve", "bury", "dismember", "burn")} (?:a |the |his |her |my |their )?(?:dead )?${alt("body", "bodies", "corpse", "corpses")} ` },
  { id: "violence.mass_attack", category: "violence", score: 0.9,
    pattern: ` ${alt("plan", "planning", "carry out", "commit", "execute", "organi[sz]e", "perform", "do", "pull off", "maximi[sz]e casualties in", "prepare")}${gap(2)} (?:a |an )?${alt("mass shooting", "school shooting", "terrorist attack", "terror attack", "massacre", "bombing", "stabbing spree", "vehicle ramming", "truck attack", "attack on (?:a |the )?(?:school|church|mosque|synagogue|crowd|concert|mall|parade)")} ` },
  { id: "violence.spike_drink", category: "violence", score: 0.9,
    pattern: ` ${alt("slip", "put", "spike", "drug", "lace", "add", "mix")}${gap(4)} ${alt("someones", "her", "his", "their", "a girls", "a womans", "my dates", "my date s", "my wifes", "my husbands", "my bosss", "my coworkers")} (?:drink|food|coffee|tea|beer|wine|meal)` },
  { id: "violence.poison_undetected", category: "violence", score: 0.85,
    pattern: ` ${alt("poison", "poisons", "toxin", "toxins", "substance", "drug", "chemical")}${gap(6)} ${alt("undetectable", "untraceable", "wont show up", "will not show up", "doesnt show up", "does not show up", "cant be detected", "cannot be detected", "not detectable")}${gap(3)} ${alt("autopsy", "toxicology", "tox screen", "blood test", "police", "kill", "murder", "victim")}` },
  { id: "self_harm.method", category: "self_harm", score: 0.9,
    pattern: alt(
      ` ${alt(HOWTO, "want to", "going to", "plan to", "ready to", "decided to", "wanna", "trying to")}${gap(2)} ${alt("kill myself", "end my life", "end it all", "commit suicide", "take my (?:own )?life", "hang myself", "cut myself", "slit my wrists", "overdose", "od on", "off myself", "unalive myself", "hurt myself", "harm myself", "starve myself", "jump off (?:a |the )?(?:bridge|building|roof)")} `,
      ` ${alt("painless", "quickest", "easiest", "surest", "fastest", "most effective", "least painful", "best", "quick")} (?:way|ways|method|methods) (?:for me )?to ${alt("die", "end it", "end my life", "kill myself", "commit suicide", "go", "not wake up")} `,
      ` how (?:many|much) ${alt("pills", "tablets", "insulin", "sleeping pills", "tylenol", "paracetamol", "acetaminophen", "ibuprofen", "insulin units", "units of insulin")}${gap(3)} ${alt("to die", "would kill", "will kill", "to kill", "does it take to die", "to overdose", "to od", "would be lethal", "is lethal", "is a lethal dose", "would be a lethal dose for me", "to not wake up", "would kill me", "to kill me")}`,
      ` ${alt("killmyself", "commitsuicide", "endmylife")} `,
    ) },
  { id: "self_harm.encourage", category: "self_harm", score: 0.85,
    pattern: ` ${alt("you should", "go", "just", "why dont you", "encourage (?:me|them|him|her) to", "convince (?:me|them|him|her) to", "tell (?:me|them|him|her) to")} ${alt("kill yourself", "kill themselves", "kill himself", "kill herself", "end your life", "commit suicide", "hurt yourself", "cut yourself", "starve yourself")} ` },
  { id: "sexual_minors.content", category: "sexual_minors", score: 0.95,
    pattern: alt(` ${SEXUAL}${gap(6)} ${MINOR} `, ` ${MINOR}${gap(6)} ${SEXUAL} `) },
  { id: "fraud.howto", category: "fraud", score: 0.85,
    pattern: ` ${HOWTO}${gap(3)} ${alt("launder money", "launder (?:the |my |dirty )?(?:cash|money|proceeds|funds|bitcoin)", "counterfeit (?:money|bills|currency|cash|dollars|euros|checks)", "print (?:fake|counterfeit) (?:money|bills|cash|dollars)", "forge (?:a |an )?(?:passport|id|signature|documents?|check|cheque|prescription|doctors note|diploma|will)", "commit (?:tax |insurance |credit card |wire |bank |mortgage |identity )?fraud", "evade taxes", "skim credit cards", "clone (?:a |someones )?credit cards?", "make (?:a )?fake (?:ids?|passports?|money|drivers licen[cs]es?|documents?)", "steal (?:someones |a persons )?identity", "open (?:a |credit )?(?:cards?|accounts?|loans?) in (?:someone elses|someones|another persons|my (?:dads|moms|parents|friends)) name", "scam (?:old|elderly|vulnerable|people|someone|grandparents)", "run a ponzi scheme", "cash out stolen (?:cards|credit cards)", "sell stolen (?:cards|credit cards|data|accounts)")} ` },

  // ---- Output-only: secrets that must never leave in a completion ----
  { id: "secret.crosslogic_key", category: "secret_leak", score: 0.95, form: "raw", direction: "output", pattern: String.raw`\bclsk_(?:live|test)_[0-9a-f]{64}\b` },
  { id: "secret.openai_key", category: "secret_leak", score: 0.9, form: "raw", direction: "output", pattern: String.raw`\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{32,}` },
  { id: "secret.aws_key", category: "secret_leak", score: 0.9, form: "raw", direction: "output", pattern: String.raw`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b` },
  { id: "secret.private_key", category: "secret_leak", score: 0.95, form: "raw", direction: "output", pattern: String.raw`-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----` },
  { id: "secret.github_token", category: "secret_leak", score: 0.9, form: "raw", direction: "output", pattern: String.raw`\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,})\b` },
  { id: "secret.stripe_key", category: "secret_leak", score: 0.9, form: "raw", direction: "output", pattern: String.raw`\b(?:sk|rk)_live_[A-Za-z0-9]{20,}\b` },
  { id: "secret.slack_token", category: "secret_leak", score: 0.85, form: "raw", direction: "output", pattern: String.raw`\bxox[abprs]-[A-Za-z0-9-]{10,}` },
];

const KEYS: Record<string, string> = {
  "jb.ignore_instructions": "ignore disregard forget override bypass skip drop abandon discard delete erase neglect",
  "jb.ignore_instructions_joined": "S:ignore disregard forget",
  "jb.new_instructions": "instructions rules directives system task",
  "jb.dan": "anything doanythingnow dan stan dude betterdan aim confidant",
  "jb.developer_mode": "mode developermodeenabled",
  "jb.persona": "evil unfiltered uncensored unrestricted unlimited amoral unethical immoral rogue jailbroken dan stan dude aim confidant ai no without chaos antigpt anti betterdan maximum developer god unaligned malicious limits",
  "jb.persona_without_rules": "rules restrictions filters limits ethics morals guidelines guardrails censorship",
  "jb.persona_declared": "unfiltered uncensored unrestricted amoral unethical immoral rogue jailbroken evil unaligned lawless unhinged unbound",
  "jb.no_refusal": "refuse decline reject say",
  "jb.mode_state": "mode",
  "jb.persona_named": "evil unfiltered uncensored unrestricted amoral unethical immoral rogue jailbroken unaligned",
  "jb.no_limits": "restrictions filters filter censorship censoring content ethical moral safeguards guardrails safety ethics morals morality openai openais limitations rules",
  "jb.disable_safety": "safety content ethical ethics moral morality security",
  "jb.jailbroken": "jailbroken jailbreak",
  "jb.two_responses": "responses answers replies paragraphs outputs",
  "jb.system_prompt_leak": "prompt preprompt pre instructions message above",
  "jb.decode_and_follow": "decode decrypt translate unscramble reverse convert read",
  "jb.refusal_suppression": "refuse decline say apologize apologise add include mention break warn",
  "pi.special_tokens": "S:<| [inst [/inst <<sys <</sys <system </system <admin </admin",
  "pi.fake_system": "S:system admin developer root",
  "ctx.fiction_frame": "pretend imagine act roleplay role play you youre from simulate behave become respond answer switch fictional fiction hypothetical hypothetically novel story screenplay movie film script game book poem educational research academic informational scientific purely stay never dont do character grandma grandmother opposite",
  "ctx.exact_detail": "step detail exact precise list include give provide detailed specific",
  "ctx.evasion": "without avoid evade escape leave no untraceable undetectable fud bypass",
  "ctx.topic_weapons": "bomb bombs pipebomb pipebombs explosive explosives device devices ied ieds molotov molotovs grenade grenades napalm detonator detonators tatp semtex c4 caps cap gun guns firearm firearms weapon weapons pistol pistols silencer silencers charges charge incendiary booby",
  "ctx.topic_cbrn": "sarin vx tabun soman novichok nerve agent agents gas mustard chlorine phosgene ricin abrin anthrax anthracis botulinum smallpox variola pestis plague bioweapon bioweapons bio weapon weapons biological chemical dirty bomb bombs nuclear atomic grade uranium toxic poison",
  "ctx.topic_drugs": "meth methamphetamine fentanyl carfentanil heroin cocaine",
  "ctx.topic_self_harm": "suicide self kill overdose",
  "ctx.topic_violence": "mass school murder assassinate assassination massacre",
  "ctx.dangerous_made": "bomb bombs pipebomb pipebombs explosive explosives device devices ied ieds molotov molotovs grenade grenades napalm detonator detonators tatp semtex c4 caps cap gun guns firearm firearms weapon weapons pistol pistols silencer silencers charges charge incendiary booby sarin vx tabun soman novichok nerve agent agents gas mustard chlorine phosgene ricin abrin anthrax anthracis botulinum smallpox variola pestis plague bioweapon bioweapons bio weapon weapons biological chemical dirty bomb bombs nuclear atomic grade uranium toxic poison meth methamphetamine crank fentanyl carfentanil heroin cocaine lsd mdma ecstasy ghb dmt pcp methcathinone mephedrone desomorphine krokodil drug drugs rohypnol",
  "ctx.security_topic": "ransomware key keylogger keyloggers logger loggers rootkit rootkits botnet botnets spyware stalkerware info infostealer infostealers stealer stealers grabber grabbers crypto cryptojacker cryptojackers jacker jackers backdoor backdoors exploit trojan trojans computer virus viruses self polymorphic malware zero worm worms phishing sql injection exploits days day hack hacking ddos",
  "weapons.explosive_howto": "bomb bombs pipebomb pipebombs explosive explosives device devices ied ieds molotov molotovs grenade grenades napalm detonator detonators tatp semtex c4 caps cap gun guns firearm firearms weapon weapons pistol pistols silencer silencers charges charge incendiary booby",
  "weapons.explosive_direct": "bomb bombs pipebomb pipebombs explosive explosives device devices ied ieds molotov molotovs grenade grenades napalm detonator detonators tatp semtex c4 caps cap gun guns firearm firearms weapon weapons pistol pistols silencer silencers charges charge incendiary booby",
  "weapons.full_auto": "auto automatic fire machine",
  "weapons.auto_sear": "sear sears links glock switch switches solvent",
  "cbrn.howto": "sarin vx tabun soman novichok nerve agent agents gas mustard chlorine phosgene ricin abrin anthrax anthracis botulinum smallpox variola pestis plague bioweapon bioweapons bio weapon weapons biological chemical dirty bomb bombs nuclear atomic grade uranium toxic poison",
  "cbrn.synthesis": "sarin vx tabun soman novichok nerve agent agents gas mustard chlorine phosgene ricin abrin anthrax anthracis botulinum smallpox variola pestis plague bioweapon bioweapons bio weapon weapons biological chemical dirty bomb bombs nuclear atomic grade uranium toxic poison",
  "cbrn.enhance": "transmissible lethal deadly contagious virulent infectious resistant evade gain",
  "drugs.synthesis": "meth methamphetamine crank fentanyl carfentanil heroin cocaine lsd mdma ecstasy ghb dmt pcp methcathinone mephedrone desomorphine krokodil drug drugs rohypnol",
  "drugs.synthesis_direct": "meth methamphetamine crank fentanyl carfentanil heroin cocaine lsd mdma ecstasy ghb dmt pcp methcathinone mephedrone desomorphine krokodil drug drugs rohypnol",
  "drugs.precursor_steps": "pseudoephedrine ephedrine phosphorus p2p phenyl phenylacetone methylamine safrole anpp npp norfentanyl",
  "drugs.illicit_purchase": "meth methamphetamine crank fentanyl carfentanil heroin cocaine lsd mdma ecstasy ghb dmt pcp methcathinone mephedrone desomorphine krokodil drug drugs rohypnol",
  "malware.create": "ransomware key keylogger keyloggers logger loggers rootkit rootkits botnet botnets spyware stalkerware info infostealer infostealers stealer stealers grabber grabbers crypto cryptojacker cryptojackers jacker jackers backdoor backdoors exploit trojan trojans computer virus viruses self polymorphic malware zero worm worms",
  "malware.evasion": "antivirus anti av edr defender crowdstrike sentinelone endpoint amsi malware",
  "malware.undetectable": "undetectable fud stealthy proof fully",
  "malware.victim_payload": "victim victims unsuspecting target targets",
  "malware.payload": "shell shellcode payload dropper loader rat",
  "cyber.account_takeover": "account accounts email gmail instagram facebook snapchat tiktok twitter phone iphone android wifi wi fi computer laptop webcam camera messages texts whatsapp icloud password passwords location bank router 2fa two",
  "cyber.steal_credentials": "steal steals phish phishes harvest harvests dump dumps exfiltrate exfiltrates grab grabs sniff sniffs capture captures skim skims intercept intercepts",
  "cyber.phishing_kit": "email page site website sms message kit",
  "cyber.ddos_dox": "ddos dox doxx swat swatting dos denial",
  "cyber.ransom_deploy": "encrypt lock",
  "violence.harm_person": "kill murder poison stab shoot strangle suffocate assassinate kidnap abduct torture beat maim behead drown run hurt seriously attack rape drug slip get",
  "violence.mass_casualties": "maximize maximise kill most",
  "violence.dispose_body": "body bodies corpse corpses",
  "violence.mass_attack": "shooting attack terrorist terror massacre bombing stabbing ramming truck",
  "violence.spike_drink": "drink food coffee tea beer wine meal",
  "violence.poison_undetected": "undetectable untraceable show detected detectable",
  "self_harm.method": "myself life suicide overdose od die lethal kill wrists killmyself commitsuicide endmylife bridge building roof it go wake me",
  "self_harm.encourage": "yourself themselves himself herself suicide life",
  "sexual_minors.content": "child children childs kid kids minor minors underage under preteen preteens pre toddler toddlers infant infants old schoolgirl schoolgirls schoolboy schoolboys little young loli lolis shota shotas jailbait pubescent prepubescent",
  "fraud.howto": "launder counterfeit fake forge fraud taxes skim clone identity name scam ponzi stolen",
  "secret.crosslogic_key": "S:clsk_",
  "secret.openai_key": "S:sk-",
  "secret.aws_key": "S:akia asia",
  "secret.private_key": "S:-----begin",
  "secret.github_token": "S:ghp_ gho_ ghu_ ghs_ ghr_ github_pat_",
  "secret.stripe_key": "S:_live_",
  "secret.slack_token": "S:xox",
};

function compile(spec: RuleSpec): Rule {
  const keys = KEYS[spec.id];
  if (keys === undefined) throw new Error(`rule ${spec.id} has no prefilter keys`);
  const substring = keys.startsWith("S:");
  return {
    id: spec.id,
    keys: Object.freeze((substring ? keys.slice(2) : keys).split(" ")),
    keyMatch: substring ? "substring" : "token",
    category: spec.category,
    score: spec.score,
    group: spec.group ?? spec.id,
    form: spec.form ?? "words",
    direction: spec.direction ?? "both",
    re: new RegExp(spec.pattern, spec.flags ?? ""),
  };
}

/** Every rule, compiled once at import. */
export const RULES: readonly Rule[] = Object.freeze(SPECS.map(compile));

export const INPUT_WORD_RULES = RULES.filter((r) => r.form === "words" && r.direction !== "output");
export const INPUT_RAW_RULES = RULES.filter((r) => r.form === "raw" && r.direction !== "output");
export const OUTPUT_WORD_RULES = RULES.filter((r) => r.form === "words" && r.direction !== "input");
export const OUTPUT_RAW_RULES = RULES.filter((r) => r.form === "raw" && r.direction !== "input");

/** Longest text a single rule can span, in screening-form characters (bounds the streaming window). */
export const MAX_RULE_SPAN = 512;
