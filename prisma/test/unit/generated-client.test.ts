import assert from "node:assert/strict";
import { it } from "node:test";
import { generatedClientDrift } from "../../src/generate.ts";

it("the committed Prisma client matches schema.prisma", () => {
  assert.deepEqual(generatedClientDrift(), [], "run `node prisma/src/cli.ts generate` and commit prisma/src/generated");
});
