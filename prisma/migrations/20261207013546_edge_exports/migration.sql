-- CreateTable
CREATE TABLE "edge_signing_keys" (
    "kid" TEXT NOT NULL,
    "public_jwk" JSONB NOT NULL,
    "private_key" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_at" TIMESTAMP(3),

    CONSTRAINT "edge_signing_keys_pkey" PRIMARY KEY ("kid")
);

-- CreateTable
CREATE TABLE "edge_exports" (
    "id" TEXT NOT NULL,
    "policy_id" TEXT NOT NULL,
    "owner_key_id" TEXT NOT NULL,
    "device_id" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "call_quota" BIGINT,
    "kid" TEXT NOT NULL,
    "license" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMP(3),

    CONSTRAINT "edge_exports_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "edge_exports_policy_id_idx" ON "edge_exports"("policy_id");

-- CreateIndex
CREATE INDEX "edge_exports_kid_expires_at_idx" ON "edge_exports"("kid", "expires_at");
