/** The body schema compiles in fastify's own ajv and gives the same verdicts as validateSignRequest. */
import fs from "node:fs";
import Fastify from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import { signRequestBodySchema, validateSignRequest } from "../../signer/signing/index.js";
import { REFERENCE_DIR } from "./reference.js";

const app = Fastify();

beforeAll(async () => {
  app.post("/api/v1/eth2/sign/:pubkey", { schema: { body: signRequestBodySchema } }, async (request) => {
    return { type: validateSignRequest(request.body).type };
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

it("accepts every reference body and rejects a malformed one naming the field", async () => {
  const files = fs.readdirSync(REFERENCE_DIR).filter((f) => f.endsWith(".json") && !f.startsWith("GET"));
  expect(files.length).toBe(11);
  for (const file of files) {
    const { body } = JSON.parse(fs.readFileSync(`${REFERENCE_DIR}/${file}`, "utf8"));
    const response = await app.inject({ method: "POST", url: "/api/v1/eth2/sign/0xab", payload: body });
    expect(response.statusCode, file).toBe(200);
    expect(response.json().type).toBe(body.type);
  }
  const { body } = JSON.parse(fs.readFileSync(`${REFERENCE_DIR}/ATTESTATION.json`, "utf8"));
  body.attestation.target.epoch = "ten";
  const response = await app.inject({ method: "POST", url: "/api/v1/eth2/sign/0xab", payload: body });
  expect(response.statusCode).toBe(400);
  expect(response.json().message).toContain("/attestation/target/epoch");
});
