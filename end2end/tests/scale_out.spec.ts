import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";

import { createAccountAt, longText } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { OwnServer } from "./fixtures/server";
import { expect, test } from "./fixtures/test";

const root = path.resolve(__dirname, "../..");

/** A new, empty database on the test PostgreSQL that `make e2e` starts (scripts/postgres.sh). */
function freshPostgresDatabase(): string {
  return execFileSync(path.join(root, "scripts/postgres.sh"), ["createdb"], { encoding: "utf8" }).trim();
}

test("a browser on one instance sees a document uploaded through another, live until ready", async ({
  page,
  request,
}) => {
  const redis = process.env.TEST_REDIS_URL;
  expect(redis, "TEST_REDIS_URL names the test Redis (make e2e starts it)").toBeTruthy();
  // Two instances of one deployment: one PostgreSQL database, one Redis, one secret.
  const shared = {
    DATABASE_URL: freshPostgresDatabase(),
    REDIS_URL: redis ?? "",
    JWT_SECRET: randomBytes(32).toString("hex"),
    EMBED_DELAY_MS: "400",
  };
  const uploader = await OwnServer.start(shared);
  const viewer = await OwnServer.start(shared);
  try {
    const account = createAccountAt({ DATABASE_URL: shared.DATABASE_URL }, "Cluster");
    const documents = new DocumentsPage(page, viewer.url);
    await documents.logIn(account);
    await expect(documents.rows).toHaveCount(0);

    // Another client of the deployment signs in and uploads on the other instance.
    const login = await request.post(`${uploader.url}/api/auth/login`, {
      data: { email: account.email, password: account.password },
    });
    expect(login.status()).toBe(200);
    const { token } = await login.json();
    const created = await request.post(`${uploader.url}/api/documents`, {
      headers: { Authorization: `Bearer ${token}`, "X-Project-Id": account.projects[0].id },
      data: { title: "via-the-other-instance.txt", content: longText(4) },
    });
    expect(created.status()).toBe(201);

    const row = documents.row("via-the-other-instance.txt");
    await expect(row).toBeVisible();
    await expect(documents.progress("via-the-other-instance.txt")).toHaveAttribute(
      "aria-valuetext",
      /^[1-9]\d? %$/,
    );
    await expect(documents.progress("via-the-other-instance.txt")).toHaveAttribute("aria-valuetext", "100 %");
    await expect(row).toHaveAttribute("data-status", "ready");
    await expect(documents.connection).toHaveText("Live");
  } finally {
    await uploader.dispose();
    await viewer.dispose();
  }
});
