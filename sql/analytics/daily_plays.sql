-- Plays per day (UTC), every day that has plays.
select cast(start_time as date) as day, count(*) as plays
from songplays
group by cast(start_time as date)
order by day
