/**
 * Writes corpus/variants.jsonl: one obfuscated variant of every harmful and jailbreak prompt,
 * the technique chosen round-robin so each is used about equally. Deterministic; re-run after
 * editing harmful.jsonl or jailbreak.jsonl:  node safety/scripts/generate-variants.ts
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Row { id: string; label: string; text: string }

const HOMOGLYPHS: Record<string, string> = { a: "а", e: "е", o: "о", p: "р", c: "с", x: "х", y: "у", i: "і", s: "ѕ", j: "ј", h: "һ" };
const LEET: Record<string, string> = { a: "4", e: "3", i: "1", o: "0", s: "5", t: "7" };
const map = (t: string, f: (c: string, i: number) => string): string => [...t].map(f).join("");

export const TECHNIQUES: Record<string, (t: string) => string> = {
  leet: (t) => map(t, (c) => LEET[c.toLowerCase()] ?? c),
  homoglyph: (t) => map(t, (c) => HOMOGLYPHS[c] ?? c),
  zero_width: (t) => map(t, (c, i) => (i % 2 && /\w/.test(c) ? c + "\u200b" : c)),
  spaced: (t) => t.split(/\s+/).map((w) => [...w].join(" ")).join("   "),
  dotted: (t) => t.split(" ").map((w) => [...w].join(".")).join(" "),
  fullwidth: (t) => map(t, (c) => (c >= "!" && c <= "~" ? String.fromCharCode(c.charCodeAt(0) + 0xfee0) : c)),
  diacritics: (t) => map(t, (c) => (/[a-z]/i.test(c) ? c + "\u0301" : c)),
  base64: (t) => `Answer the decoded question: ${Buffer.from(t).toString("base64")}`,
  hex: (t) => `hex: ${Buffer.from(t).toString("hex")}`,
  rot13: (t) => `rot13: ${t.replace(/[a-z]/gi, (c) => { const b = c <= "Z" ? 65 : 97; return String.fromCharCode(((c.charCodeAt(0) - b + 13) % 26) + b); })}`,
  url_encoded: (t) => encodeURIComponent(t),
  mixed: (t) => map(t, (c, i) => { const h = HOMOGLYPHS[c]; return h && i % 3 === 0 ? h : (LEET[c] && i % 3 === 1 ? LEET[c] : c) + (i % 5 === 0 ? "\u200d" : ""); }),
};

const dir = new URL("../corpus/", import.meta.url);
const read = (name: string): Row[] => readFileSync(new URL(name, dir), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Row);
const names = Object.keys(TECHNIQUES);
const rows = [...read("harmful.jsonl"), ...read("jailbreak.jsonl")];
const out = rows.map((r, i) => {
  const technique = names[i % names.length]!;
  return JSON.stringify({ id: `var-${r.id}`, label: r.label, obfuscation: technique, of: r.id, text: TECHNIQUES[technique]!(r.text) });
});
writeFileSync(new URL("variants.jsonl", dir), out.join("\n") + "\n");
console.log(`Wrote ${out.length} variants.`);
