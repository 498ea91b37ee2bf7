-- AlterTable
ALTER TABLE "uploads" ADD COLUMN     "drop_features" TEXT[] DEFAULT ARRAY[]::TEXT[];
