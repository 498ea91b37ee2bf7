-- AlterTable
ALTER TABLE "edge_exports" ADD COLUMN     "last_hash" TEXT,
ADD COLUMN     "last_report_at" TIMESTAMP(3),
ADD COLUMN     "last_seq" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "last_to" TIMESTAMP(3),
ADD COLUMN     "renewed_at" TIMESTAMP(3),
ADD COLUMN     "reported_calls" BIGINT NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "edge_usage_records" (
    "export_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "from_at" TIMESTAMP(3) NOT NULL,
    "to_at" TIMESTAMP(3) NOT NULL,
    "calls" BIGINT NOT NULL,
    "prev_hash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "received_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "edge_usage_records_pkey" PRIMARY KEY ("export_id","seq")
);

-- CreateIndex
CREATE INDEX "edge_usage_records_to_at_idx" ON "edge_usage_records"("to_at");

-- AddForeignKey
ALTER TABLE "edge_usage_records" ADD CONSTRAINT "edge_usage_records_export_id_fkey" FOREIGN KEY ("export_id") REFERENCES "edge_exports"("id") ON DELETE CASCADE ON UPDATE CASCADE;
