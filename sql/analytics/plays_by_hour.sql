-- Plays per hour of the day (UTC), every hour that has plays.
select time.hour, count(*) as plays
from songplays
inner join time on time.start_time = songplays.start_time
group by time.hour
order by time.hour
