-- CreateEnum
CREATE TYPE "PolicyStatus" AS ENUM ('validating', 'ready', 'rejected');

-- CreateEnum
CREATE TYPE "PolicyAccess" AS ENUM ('public', 'private');

-- CreateEnum
CREATE TYPE "EvaluationStatus" AS ENUM ('queued', 'running', 'completed', 'failed');

-- CreateTable
CREATE TABLE "policies" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "version" INTEGER,
    "owner_key_id" TEXT NOT NULL,
    "access" "PolicyAccess" NOT NULL,
    "runtime" TEXT NOT NULL,
    "status" "PolicyStatus" NOT NULL DEFAULT 'validating',
    "manifest" JSONB,
    "errors" JSONB NOT NULL DEFAULT '[]',
    "bundle_key" TEXT NOT NULL,
    "entry_key" TEXT,
    "bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "policies_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "evaluations" (
    "id" TEXT NOT NULL,
    "policy_id" TEXT NOT NULL,
    "dataset_id" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "owner_key_id" TEXT NOT NULL,
    "status" "EvaluationStatus" NOT NULL DEFAULT 'queued',
    "metrics" JSONB,
    "timing" JSONB,
    "error" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),

    CONSTRAINT "evaluations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "policies_status_idx" ON "policies"("status");

-- CreateIndex
CREATE UNIQUE INDEX "policies_owner_key_id_name_version_key" ON "policies"("owner_key_id", "name", "version");

-- CreateIndex
CREATE INDEX "evaluations_dataset_id_status_idx" ON "evaluations"("dataset_id", "status");

-- CreateIndex
CREATE INDEX "evaluations_policy_id_idx" ON "evaluations"("policy_id");

-- AddForeignKey
ALTER TABLE "evaluations" ADD CONSTRAINT "evaluations_policy_id_fkey" FOREIGN KEY ("policy_id") REFERENCES "policies"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
