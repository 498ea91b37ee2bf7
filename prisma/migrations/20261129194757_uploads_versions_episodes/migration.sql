-- CreateEnum
CREATE TYPE "UploadStatus" AS ENUM ('received', 'processing', 'published', 'failed');

-- CreateTable
CREATE TABLE "uploads" (
    "id" TEXT NOT NULL,
    "dataset_id" TEXT NOT NULL,
    "owner_key_id" TEXT NOT NULL,
    "requested_format" TEXT,
    "format" TEXT,
    "status" "UploadStatus" NOT NULL DEFAULT 'received',
    "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "file_name" TEXT,
    "blob_key" TEXT NOT NULL,
    "bytes" BIGINT NOT NULL DEFAULT 0,
    "sha256" TEXT,
    "idempotency_key" TEXT,
    "feature_map" JSONB,
    "multipart" JSONB,
    "errors" JSONB NOT NULL DEFAULT '[]',
    "warnings" JSONB NOT NULL DEFAULT '[]',
    "episode_count" INTEGER,
    "step_count" BIGINT,
    "version" INTEGER,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,
    "finished_at" TIMESTAMP(3),

    CONSTRAINT "uploads_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dataset_versions" (
    "dataset_id" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "episode_count" INTEGER NOT NULL,
    "step_count" BIGINT NOT NULL,
    "upload_id" TEXT NOT NULL,
    "manifest_key" TEXT NOT NULL,
    "stats_key" TEXT NOT NULL,
    "sketch_key" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dataset_versions_pkey" PRIMARY KEY ("dataset_id","version")
);

-- CreateTable
CREATE TABLE "episodes" (
    "dataset_id" TEXT NOT NULL,
    "episode_index" INTEGER NOT NULL,
    "version" INTEGER NOT NULL,
    "upload_id" TEXT NOT NULL,
    "source_id" TEXT NOT NULL,
    "length" INTEGER NOT NULL,
    "task" TEXT,
    "success" BOOLEAN,
    "shard_key" TEXT NOT NULL,
    "batch_start" INTEGER NOT NULL,
    "batch_count" INTEGER NOT NULL,
    "byte_offset" BIGINT NOT NULL,
    "byte_length" BIGINT NOT NULL,
    "checksum" TEXT NOT NULL,
    "metadata" JSONB,

    CONSTRAINT "episodes_pkey" PRIMARY KEY ("dataset_id","episode_index")
);

-- CreateIndex
CREATE INDEX "uploads_dataset_id_status_idx" ON "uploads"("dataset_id", "status");

-- CreateIndex
CREATE UNIQUE INDEX "uploads_owner_key_id_idempotency_key_key" ON "uploads"("owner_key_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "episodes_dataset_id_version_idx" ON "episodes"("dataset_id", "version");

-- CreateIndex
CREATE INDEX "episodes_upload_id_idx" ON "episodes"("upload_id");

-- AddForeignKey
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dataset_versions" ADD CONSTRAINT "dataset_versions_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "episodes" ADD CONSTRAINT "episodes_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
