-- AddForeignKey
ALTER TABLE "trainings" ADD CONSTRAINT "trainings_policy_id_fkey" FOREIGN KEY ("policy_id") REFERENCES "policies"("id") ON DELETE SET NULL ON UPDATE CASCADE;
