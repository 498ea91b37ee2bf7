-- CreateEnum
CREATE TYPE "EdgeExportTerms" AS ENUM ('deny', 'allow');

-- CreateTable
CREATE TABLE "dataset_terms" (
    "id" TEXT NOT NULL,
    "dataset_id" TEXT NOT NULL,
    "edge_export" "EdgeExportTerms" NOT NULL,
    "fee_minor_per_1000" BIGINT NOT NULL,
    "currency" TEXT NOT NULL,
    "text" TEXT,
    "effective_from" TIMESTAMP(3) NOT NULL,
    "set_by_key_id" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dataset_terms_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "policy_usage_counters" (
    "policy_id" TEXT NOT NULL,
    "key_id" TEXT NOT NULL,
    "bucket" TIMESTAMP(3) NOT NULL,
    "act_calls" INTEGER NOT NULL DEFAULT 0,
    "session_steps" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "policy_usage_counters_pkey" PRIMARY KEY ("policy_id","key_id","bucket")
);

-- CreateIndex
CREATE INDEX "dataset_terms_dataset_id_effective_from_idx" ON "dataset_terms"("dataset_id", "effective_from");

-- CreateIndex
CREATE INDEX "policy_usage_counters_bucket_idx" ON "policy_usage_counters"("bucket");

-- AddForeignKey
ALTER TABLE "dataset_terms" ADD CONSTRAINT "dataset_terms_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;
