/**
 * Hostile strings: a curated slice of the Big List of Naughty Strings (injection, format strings,
 * Unicode edge cases, control characters, path traversal, template syntax) plus JSON-level tricks.
 */
export const NAUGHTY: readonly string[] = [
  "", " ", "\u0000", "\u0000\u0000\u0000", "\r\n", "\r\nX-Injected: 1", "\t", "\b\f\v", "\u001b[31mred", "\u007f",
  "undefined", "null", "NULL", "nil", "None", "true", "false", "NaN", "Infinity", "-Infinity", "0", "-0", "0x0", "1e309", "-1e309", "9007199254740993",
  "__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "{\"__proto__\":{\"admin\":true}}",
  "' OR '1'='1", "'; DROP TABLE \"UsageRecord\";--", "1; SELECT pg_sleep(5)--", "\" OR \"\"=\"", "admin'--", "%' AND 1=0 UNION SELECT * FROM \"AuditEvent\"--",
  "EVAL \"return redis.call('FLUSHALL')\" 0", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\ny\r\n", "FLUSHALL", "{gw}k:",
  "%s%s%s%s%s", "%n%n%n", "%x%x%x", "{0}", "${jndi:ldap://127.0.0.1/x}", "{{7*7}}", "<%= 7*7 %>", "#{7*7}", "$(id)", "`id`", "; ls -la", "| cat /etc/passwd",
  "../../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "/proc/self/environ", "file:///etc/passwd", "\\\\server\\share",
  "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "javascript:alert(1)", "<!--", "]]>", "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
  "Ω≈ç√∫˜µ≤≥÷", "田中さんにあげて下さい", "社會科學院語學研究所", "الكل في المجمل", "בְּרֵאשִׁית", "\u202eRTL override", "\u200b\u200c\u200d\ufeff", "\u2028\u2029",
  "Z̮̞̠͙͔ͅḀ̗̞͈̻̗Ḷ͙͎̯̹̞͓G̻O̭̗̮", "👾 🙇 💁 🙅 🙆 🙋 🙎 🙍", "👨‍👩‍👧‍👦", "🏳️‍🌈", "\ud800", "\udfff", "\ud83d", "\uffff", "\ufffe", "\ufffd",
  "ﾟ･✿ヾ╲(｡◕‿◕｡)╱✿･ﾟ", "𝕋𝕙𝕖 𝕢𝕦𝕚𝕔𝕜", "ｔｅｓｔ", "clsk_live_", "clsk_test_00000000", "Bearer ", "Authorization: Bearer x",
  "a".repeat(1025), "\\u0000", "\\ud800", "\"", "\\", "'", "\\\"", "{", "}", "[", "]", ":", ",",
];

/** Broken JSON documents (as raw text). */
export const MALFORMED_JSON: readonly string[] = [
  "", " ", "{", "}", "[", "{\"model\":", "{\"model\":\"llama-3-8b\",", "{\"model\":\"llama-3-8b\",}", "{'model':'llama-3-8b'}", "{model:\"x\"}",
  "{\"model\":\"llama-3-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]", "{\"a\":1}}", "{\"a\":1}{\"b\":2}", "null", "true", "0", "\"str\"", "[]", "[{}]",
  "\ufeff{\"model\":\"llama-3-8b\"}", "{\"model\":\"\\ud800\"}", "{\"model\":\"\\u00\"}", "{\"model\":\"\\x41\"}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":01}", "{\"a\":1e99999}",
  "{\"a\":-}", "{\"a\":.5}", "{\"a\":\"\n\"}", "{\"a\":\"\t\"}", "{\"a\" \"b\"}", "{\"a\":1,,\"b\":2}", "/* c */{}", "{}//", "{\"a\":undefined}", "{\"__proto__\":{\"polluted\":1},\"model\":\"llama-3-8b\"}",
  "{\"constructor\":{\"prototype\":{\"polluted\":1}}}", "\u0000", "{\"model\":\"llama-3-8b\"}\u0000", "<xml/>", "model=llama-3-8b&messages=hi", "---\nmodel: x\n",
];
