-- AlterEnum
ALTER TYPE "UploadStatus" ADD VALUE 'needs_mapping';
