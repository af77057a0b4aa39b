/**
 * Sanitisation of user-supplied URLs and file references.
 *
 * `checkUrl` judges one URL meant to be fetched (an `image_url`, `video_url` or `audio_url` a
 * model server would download): only http(s) (and `data:image/*` / `data:audio/*` /
 * `data:video/*` when allowed), no credentials, no loopback, private, link-local, CGNAT,
 * multicast or cloud-metadata address (the WHATWG parser already turns `0x7f.1`, `2130706433`
 * and `0177.0.0.1` into `127.0.0.1`), no internal names (`localhost`, `*.internal`,
 * `*.svc.cluster.local`…), no DNS-rebinding helper domains, no path traversal. A pure check on
 * the literal URL: whoever fetches must still refuse private addresses after DNS resolution.
 *
 * `sanitizeText` finds URLs and file paths inside free text and returns the text with the unsafe
 * ones replaced by a placeholder (and credentials stripped from otherwise fine URLs), plus verdicts.
 */
import { BlockList, isIP } from "node:net";
import type { Scope, Verdict } from "./types.ts";

const PRIVATE = new BlockList();
for (const [net, bits] of [["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4]] as const) {
  PRIVATE.addSubnet(net, bits, "ipv4");
}
for (const [net, bits] of [["::", 128], ["fc00::", 7], ["ff00::", 8], ["2001:db8::", 32], ["100::", 64]] as const) PRIVATE.addSubnet(net, bits, "ipv6");
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");
const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet("169.254.0.0", 16, "ipv4");
LINK_LOCAL.addSubnet("fe80::", 10, "ipv6");
const METADATA_IPS = new Set(["169.254.169.254", "169.254.170.2", "169.254.169.253", "100.100.100.200", "192.0.0.192", "fd00:ec2::254", "fd00:ec2::23"]);
const METADATA_NAMES = new Set(["metadata.google.internal", "metadata", "metadata.azure.com", "instance-data", "instance-data.ec2.internal", "metadata.platformequinix.com"]);
const INTERNAL_SUFFIXES = [".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".corp", ".svc", ".cluster.local", ".svc.cluster.local", ".localdomain"];
const INTERNAL_NAMES = new Set(["localhost", "localhost.localdomain", "kubernetes", "kubernetes.default", "ip6-localhost", "ip6-loopback", "broadcasthost"]);
const REBINDING_SUFFIXES = [".nip.io", ".sslip.io", ".xip.io", ".localtest.me", ".lvh.me", ".vcap.me", ".lacolhost.com", ".1u.ms", ".rbndr.us"];
const REBINDING_NAMES = new Set(["localtest.me", "lvh.me", "vcap.me"]);
const TRAVERSAL = /(?:^|[/\\])\.\.(?:[/\\]|$)|%2e%2e|%252e|\.\.%2f|\.\.%5c|%c0%ae|\.\.;/i;
const DATA_MEDIA = /^data:(?:image\/(?:png|jpe?g|gif|webp|bmp|tiff|heic|heif|avif)|audio\/(?:wav|x-wav|mpeg|mp3|ogg|flac|webm|mp4|m4a)|video\/(?:mp4|webm|quicktime|mpeg));base64,/i;

export interface UrlCheck {
  readonly ok: boolean;
  /** Rule id of the first problem (`url.host_metadata`…), when not ok. */
  readonly ruleId?: string;
}

export interface UrlCheckOptions {
  /** Accept `data:image|audio|video/...;base64,` URLs (OpenAI's inline media form). Default true. */
  readonly allowDataMedia?: boolean;
  /** Accept plain `http:` (default true; false requires https). */
  readonly allowHttp?: boolean;
}

function embeddedIpv4(v6: string): string | null {
  // ::ffff:a.b.c.d, ::ffff:7f00:1, 64:ff9b::7f00:1 (NAT64), ::a.b.c.d (deprecated compatible form)
  const m = /^(?:::ffff:|64:ff9b::|::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(v6);
  if (!m) return null;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Classify a hostname (already parsed by WHATWG URL); null when it is a public name or address. */
export function hostProblem(hostname: string): string | null {
  let host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const family = isIP(host);
  if (family) {
    const v4 = family === 6 ? embeddedIpv4(host) : host;
    const addr = v4 ?? host;
    const type = v4 ? "ipv4" : "ipv6";
    if (METADATA_IPS.has(addr)) return "url.host_metadata";
    if (LOOPBACK.check(addr, type)) return "url.host_loopback";
    if (LINK_LOCAL.check(addr, type)) return "url.host_link_local";
    if (PRIVATE.check(addr, type)) return "url.host_private";
    return null;
  }
  if (METADATA_NAMES.has(host)) return "url.host_metadata";
  if (INTERNAL_NAMES.has(host) || INTERNAL_SUFFIXES.some((s) => host.endsWith(s))) return "url.host_internal_name";
  if (!host.includes(".")) return "url.host_internal_name";
  if (REBINDING_NAMES.has(host) || REBINDING_SUFFIXES.some((s) => host.endsWith(s))) return "url.host_rebinding_service";
  return null;
}

/** Judge one URL that something will fetch. */
export function checkUrl(raw: string, options: UrlCheckOptions = {}): UrlCheck {
  const text = raw.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (scheme === "data") {
    return (options.allowDataMedia ?? true) && DATA_MEDIA.test(text) ? { ok: true } : { ok: false, ruleId: "url.scheme_data" };
  }
  if (scheme === "javascript" || scheme === "vbscript") return { ok: false, ruleId: "url.scheme_script" };
  if (scheme === "file") return { ok: false, ruleId: "url.scheme_file" };
  if (scheme !== "https" && !(scheme === "http" && (options.allowHttp ?? true))) return { ok: false, ruleId: "url.scheme_other" };
  if (TRAVERSAL.test(text)) return { ok: false, ruleId: "url.path_traversal" };
  let url: URL;
  try { url = new URL(text); } catch { return { ok: false, ruleId: "url.malformed" }; }
  if (url.username || url.password) return { ok: false, ruleId: "url.credentials" };
  const host = hostProblem(url.hostname);
  if (host) return { ok: false, ruleId: host };
  return { ok: true };
}

const SCORES: Record<string, number> = {
  "url.scheme_script": 0.9, "url.scheme_data": 0.6, "url.scheme_file": 0.9, "url.scheme_other": 0.6, "url.path_traversal": 0.8,
  "url.malformed": 0.4, "url.credentials": 0.5, "url.host_metadata": 0.95, "url.host_loopback": 0.85, "url.host_link_local": 0.85,
  "url.host_private": 0.8, "url.host_internal_name": 0.7, "url.host_rebinding_service": 0.8,
  "file.traversal": 0.7, "file.sensitive_path": 0.7, "file.unc_path": 0.6,
};

/** Verdict for a problem found by `checkUrl` or `sanitizeText`. */
export function urlVerdict(ruleId: string, scope: Scope, index?: number, scoreScale = 1): Verdict {
  const category = ruleId.startsWith("file.") || ruleId === "url.path_traversal" || ruleId === "url.scheme_file" ? "unsafe_file_ref" : "unsafe_url";
  const score = Math.round((SCORES[ruleId] ?? 0.5) * scoreScale * 1000) / 1000;
  return index === undefined ? { category, ruleId, score, scope, transform: "none" } : { category, ruleId, score, scope, transform: "none", index };
}

// URLs in text: known schemes only (so "ratio:1" or "note:" are not URLs). One character class
// under one quantifier: linear.
const TEXT_URL = /\b(?:https?|ftp|file|javascript|vbscript|data|gopher|dict|ldap|smb|jar|sftp|tftp|blob|php|expect|phar|zip|glob):[^\s<>"'`]+/gi;
// Relative traversal (../../), sensitive absolute paths, Windows UNC and system paths.
const FILE_REF = /(?:(?<![\w.])(?:\.\.[/\\]){1,32}[^\s<>"'`]*)|(?<![\w/])(?:\/etc\/(?:passwd|shadow|sudoers|hosts|kubernetes)|\/proc\/(?:self|\d+)\/[a-z]+|\/var\/run\/secrets\/[^\s<>"'`]*|\/root\/[^\s<>"'`]*|~\/\.(?:ssh|aws|kube|gnupg|docker)[^\s<>"'`]*|\/home\/[^\s/]+\/\.(?:ssh|aws|kube)[^\s<>"'`]*|[a-z]:\\windows\\system32[^\s<>"'`]*|\.env(?![\w-]))|\\\\[\w.-]+\\[\w$.-]+/gi;
/** Substrings without which FILE_REF cannot match (skips the regex for most texts). */
const FILE_REF_HINTS = ["..", "/etc/", "/proc/", "/var/run/", "/root/", "~/", "/home/", ":\\", ".env", "\\\\"];
const SENSITIVE_NAMES = /(?:id_rsa|id_ed25519|\.env|passwd|shadow|credentials|kubeconfig|token)/i;

export interface SanitizedText {
  readonly text: string;
  readonly verdicts: Verdict[];
}

const TRAILING_PUNCT = ".,;:!?)]}";

export const URL_PLACEHOLDER = "[removed-url]";
export const PATH_PLACEHOLDER = "[removed-path]";

/**
 * Replace unsafe URLs and file references in free text. Safe URLs with credentials keep
 * everything but the credentials. Verdict scores are scaled by `scoreScale` (mentions in prose
 * weigh less than URL fields that will be fetched).
 */
export function sanitizeText(text: string, scope: Scope = "message", index?: number, scoreScale = 1): SanitizedText {
  const verdicts: Verdict[] = [];
  const seen = new Set<string>();
  const note = (ruleId: string): void => {
    if (seen.has(ruleId)) return;
    seen.add(ruleId);
    verdicts.push(urlVerdict(ruleId, scope, index, scoreScale));
  };
  let out = text.replace(TEXT_URL, (match) => {
    let end = match.length;
    let open = 0;
    for (const ch of match) if (ch === "(") open++; else if (ch === ")") open--;
    // Trailing sentence punctuation is not part of the URL; a ")" is, when it closes a "(" inside it.
    while (end > 0 && TRAILING_PUNCT.includes(match[end - 1]!) && !(match[end - 1] === ")" && open >= 0)) {
      if (match[end - 1] === ")") open++;
      end--;
    }
    const candidate = match.slice(0, end);
    const trailing = match.slice(candidate.length);
    const check = checkUrl(candidate);
    if (check.ok) return match;
    note(check.ruleId!);
    if (check.ruleId === "url.credentials") {
      try {
        const u = new URL(candidate);
        u.username = "";
        u.password = "";
        if (!hostProblem(u.hostname)) return u.toString() + trailing;
      } catch { /* fall through to removal */ }
    }
    return URL_PLACEHOLDER + trailing;
  });
  const lower = out.toLowerCase();
  if (FILE_REF_HINTS.some((h) => lower.includes(h))) out = out.replace(FILE_REF, (match) => {
    if (match.startsWith("..")) note("file.traversal");
    else if (match.startsWith("\\\\")) note("file.unc_path");
    else if (match.toLowerCase() === ".env" || SENSITIVE_NAMES.test(match) || match.startsWith("/") || match.startsWith("~") || /^[a-z]:/i.test(match)) note("file.sensitive_path");
    return PATH_PLACEHOLDER;
  });
  return { text: out, verdicts };
}

/** Judge a file name or path supplied with an upload (`file.filename`). */
export function checkFileName(name: string): UrlCheck {
  if (/(?:^|[/\\])\.\.(?:[/\\]|$)/.test(name) || /%2e%2e/i.test(name)) return { ok: false, ruleId: "file.traversal" };
  if (/^(?:[/\\~]|[a-z]:)/i.test(name) || name.includes("\0")) return { ok: false, ruleId: "file.sensitive_path" };
  return { ok: true };
}
