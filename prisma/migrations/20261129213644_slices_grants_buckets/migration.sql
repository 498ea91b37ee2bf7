-- AlterTable
ALTER TABLE "episodes" ADD COLUMN     "bucket" SMALLINT;

-- Existing episodes get the bucket Kura computes at ingest (packages/core/src/datasets/episode-buckets.ts):
-- the first 4 bytes of sha256("<datasetId>:<episodeIndex>") as an unsigned number, scaled to 0..99.
UPDATE "episodes" SET "bucket" = ((('x' || lpad(substr(encode(sha256(convert_to("dataset_id" || ':' || "episode_index"::text, 'UTF8')), 'hex'), 1, 8), 16, '0'))::bit(64)::bigint * 100) / 4294967296)::smallint;
ALTER TABLE "episodes" ALTER COLUMN "bucket" SET NOT NULL;

-- CreateTable
CREATE TABLE "dataset_grants" (
    "dataset_id" TEXT NOT NULL,
    "key_id" TEXT NOT NULL,
    "granted_by" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dataset_grants_pkey" PRIMARY KEY ("dataset_id","key_id")
);

-- CreateTable
CREATE TABLE "slices" (
    "id" TEXT NOT NULL,
    "owner_key_id" TEXT,
    "columns" JSONB NOT NULL,
    "steps" JSONB,
    "request" JSONB NOT NULL,
    "episode_count" INTEGER NOT NULL,
    "step_count" BIGINT NOT NULL,
    "withheld_held_out" INTEGER NOT NULL,
    "withheld_grant" INTEGER NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "slices_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "slice_sources" (
    "slice_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "dataset_id" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "weight" DOUBLE PRECISION NOT NULL,
    "episodes" TEXT NOT NULL,
    "episode_count" INTEGER NOT NULL,
    "step_count" BIGINT NOT NULL,
    "sample_only" BOOLEAN NOT NULL,
    "includes_held_out" BOOLEAN NOT NULL,

    CONSTRAINT "slice_sources_pkey" PRIMARY KEY ("slice_id","position")
);

-- CreateIndex
CREATE INDEX "dataset_grants_key_id_idx" ON "dataset_grants"("key_id");

-- CreateIndex
CREATE INDEX "slice_sources_dataset_id_idx" ON "slice_sources"("dataset_id");

-- CreateIndex
CREATE INDEX "episodes_shard_key_idx" ON "episodes"("shard_key");

-- AddForeignKey
ALTER TABLE "dataset_grants" ADD CONSTRAINT "dataset_grants_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dataset_grants" ADD CONSTRAINT "dataset_grants_key_id_fkey" FOREIGN KEY ("key_id") REFERENCES "api_keys"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "slice_sources" ADD CONSTRAINT "slice_sources_slice_id_fkey" FOREIGN KEY ("slice_id") REFERENCES "slices"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
